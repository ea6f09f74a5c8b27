// The binned kernels: joint-entropy sums of one row variable against several column variables at
// once, by counting joint histograms (PairCounter) or, for few samples, by ranks within the row's
// bins (BinGroups, RankCounter).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "pairmi/simd.hpp"
#include "pairmi/xlogx.hpp"

namespace pairmi {

// Few samples per cell (n = 90, 225 cells): entropy sums are taken while counting. Otherwise
// counting alone, then one pass over the cells, is cheaper.
inline bool sum_while_counting(std::size_t n, int bins) { return n < 4 * std::size_t(bins) * std::size_t(bins); }

// Joint histograms of one row variable against up to kGroup column variables at once: the
// interleaved increments are independent, so repeated cells in one histogram do not stall the rest.
template <class Count>
class PairCounter {
 public:
  static constexpr int kGroup = 4;

  PairCounter(std::size_t n, int bins, const XLogXTable& f)
      : n_(n),
        cells_(std::size_t(bins) * bins),
        bins_(bins),
        f_(f.data()),
        g_(f.steps()),
        sum_while_counting_(sum_while_counting(n, bins)),
        base_(n),
        base16_(n),
        hist_(kGroup * cells_, 0) {}

  void set_row(const std::uint8_t* x) {
    for (std::size_t t = 0; t < n_; ++t) base_[t] = std::uint32_t(x[t]) * std::uint32_t(bins_);
    // bins <= 255, so every cell index (< 255 * 255) fits in 16 bits.
    if (!sum_while_counting_) std::copy(base_.begin(), base_.end(), base16_.begin());
  }

  // s[k] = sum over cells of c*ln(c) in the joint histogram of the row against y[k], k < m <= kGroup.
  void joint_sums(const std::uint8_t* const* y, int m, double* s) {
    if (m == kGroup) return sums4(y, s);
    for (int k = 0; k < m; ++k) s[k] = sum1(y[k]);
  }

 private:
  // Few samples per cell (n = 90, 225 cells): the sum grows by steps[c] each time a cell holding c
  // gains a sample, so it is complete when counting ends. Many samples per cell: count only, then
  // one pass over the cells. Four histograms at once keep four dependency chains apart.
  void sums4(const std::uint8_t* const* y, double* s) {
    Count* __restrict h0 = hist_.data();
    Count* __restrict h1 = h0 + cells_;
    Count* __restrict h2 = h1 + cells_;
    Count* __restrict h3 = h2 + cells_;
    const std::uint8_t* __restrict y0 = y[0], * __restrict y1 = y[1], * __restrict y2 = y[2], * __restrict y3 = y[3];
    const std::uint32_t* __restrict base = base_.data();
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (sum_while_counting_) {
      const double* __restrict g = g_;
      for (std::size_t t = 0; t < n_; ++t) {
        const std::uint32_t a = base[t];
        s0 += g[h0[a + y0[t]]++];
        s1 += g[h1[a + y1[t]]++];
        s2 += g[h2[a + y2[t]]++];
        s3 += g[h3[a + y3[t]]++];
      }
    } else {
      count4(h0, h1, h2, h3, y0, y1, y2, y3);
      const double* __restrict f = f_;
      for (std::size_t c = 0; c < cells_; ++c) {
        s0 += f[h0[c]];
        s1 += f[h1[c]];
        s2 += f[h2[c]];
        s3 += f[h3[c]];
      }
    }
    s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
    for (int k = 0; k < kGroup; ++k) clear(hist_.data() + k * cells_, y[k]);
  }

  // Many samples per cell: counts only. Loads, not arithmetic, bound this loop, so each code array
  // is read four samples per load (-18 % at 4096 samples); the same shifts pick the same sample from
  // both loads on either byte order. Kept out of line: inlined, it slowed the loop above by ~8 %.
  [[gnu::noinline]] void count4(Count* __restrict h0, Count* __restrict h1, Count* __restrict h2, Count* __restrict h3,
                                const std::uint8_t* __restrict y0, const std::uint8_t* __restrict y1,
                                const std::uint8_t* __restrict y2, const std::uint8_t* __restrict y3) {
    const std::uint16_t* __restrict base = base16_.data();
    const auto count = [&](std::uint32_t a, std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3) {
      ++h0[a + c0];
      ++h1[a + c1];
      ++h2[a + c2];
      ++h3[a + c3];
    };
    const std::size_t n = n_;
    std::size_t t = 0;
    for (; t + 4 <= n; t += 4) {
      const auto a = load_unaligned<std::uint64_t>(base + t);
      const auto c0 = load_unaligned<std::uint32_t>(y0 + t), c1 = load_unaligned<std::uint32_t>(y1 + t),
                 c2 = load_unaligned<std::uint32_t>(y2 + t), c3 = load_unaligned<std::uint32_t>(y3 + t);
      for (int u = 0; u < 4; ++u)
        count(std::uint32_t(a >> (16 * u)) & 0xFFFF, (c0 >> (8 * u)) & 0xFF, (c1 >> (8 * u)) & 0xFF,
              (c2 >> (8 * u)) & 0xFF, (c3 >> (8 * u)) & 0xFF);
    }
    for (; t < n; ++t) count(base[t], y0[t], y1[t], y2[t], y3[t]);
  }

  // The remainder columns of a tile, one at a time (the sum is always taken while counting).
  double sum1(const std::uint8_t* __restrict y) {
    Count* __restrict h = hist_.data();
    const std::uint32_t* __restrict base = base_.data();
    double s = 0;
    for (std::size_t t = 0; t < n_; ++t) s += g_[h[base[t] + y[t]]++];
    clear(h, y);
    return s;
  }

  // Zero a histogram: all at once (a memset stores about 32 bytes per instruction), or through the
  // samples' cells when that is fewer stores (many bins, few samples).
  void clear(Count* h, const std::uint8_t* y) {
    if (cells_ * sizeof(Count) > 32 * n_) {
      for (std::size_t t = 0; t < n_; ++t) h[base_[t] + y[t]] = 0;
    } else {
      std::memset(h, 0, cells_ * sizeof(Count));
    }
  }

  std::size_t n_, cells_;
  int bins_;
  const double *f_, *g_;
  bool sum_while_counting_;
  std::vector<std::uint32_t> base_;
  std::vector<std::uint16_t> base16_;  // for count4
  std::vector<Count> hist_;
};

// Each variable's samples grouped by bin, for RankCounter (n <= 255, so samples and group starts
// are bytes), with what ranking against the variable costs.
class BinGroups {
 public:
  BinGroups() = default;
  // codes[v * n + t] for `vars` variables with codes in [0, bins).
  BinGroups(const std::uint8_t* codes, std::size_t vars, std::size_t n, int bins, int threads)
      : n_(n), bins_(std::size_t(bins)), sample_(vars * n), start_(vars * (bins_ + 1)), cost_(vars) {
#pragma omp parallel for schedule(static) num_threads(std::max(1, threads))
    for (long v = 0; v < static_cast<long>(vars); ++v) group(codes + std::size_t(v) * n, std::size_t(v));
    (void)threads;
  }

  // Bytes the constructor allocates, for a caller's memory check.
  static std::size_t bytes(std::size_t vars, std::size_t n, int bins) {
    return vars * (n + std::size_t(bins) + 1 + sizeof(std::uint32_t));
  }

  // Samples of variable v, bin by bin; bin a's group is [start(v)[a], start(v)[a + 1]).
  const std::uint8_t* samples(std::size_t v) const { return &sample_[v * n_]; }
  const std::uint8_t* start(std::size_t v) const { return &start_[v * (bins_ + 1)]; }
  // Sum of squared group sizes: RankCounter::sums costs about that many vector steps.
  std::size_t cost(std::size_t v) const { return cost_[v]; }
  bool empty() const { return cost_.empty(); }

 private:
  void group(const std::uint8_t* x, std::size_t v) {
    std::uint8_t* start = &start_[v * (bins_ + 1)];
    for (std::size_t t = 0; t < n_; ++t) ++start[x[t] + 1u];
    std::size_t cost = 0;
    for (std::size_t a = 0; a < bins_; ++a) {
      const std::size_t size = start[a + 1];
      cost += size * size;
      start[a + 1] = std::uint8_t(start[a + 1] + start[a]);
    }
    cost_[v] = std::uint32_t(cost);
    std::uint8_t next[256];
    std::copy(start, start + bins_, next);
    for (std::size_t t = 0; t < n_; ++t) sample_[v * n_ + next[x[t]]++] = std::uint8_t(t);
  }

  std::size_t n_ = 0, bins_ = 0;
  std::vector<std::uint8_t> sample_, start_;
  std::vector<std::uint32_t> cost_;
};

// Joint-entropy sums of one row variable against 16 or 32 column variables at once, for few
// samples (n <= 255). The row's samples are grouped by row bin (BinGroups); within a group, the
// number of earlier samples with the same column code (one byte lane per column, compared at once)
// is what that cell held before the sample came, so the sample adds steps[rank] to the sum, as in
// PairCounter. Ranks are tallied per lane and weighted once at the end. The cost grows with the sum
// of squared group sizes instead of with n histogram updates per pair: it pays when the row's
// samples spread over many bins (equal-frequency bins always do; a variable with outliers under
// equal-width bins does not).
class RankCounter {
 public:
  static constexpr std::size_t kMaxSamples = 255;  // ranks, tallies and sample numbers are bytes
  static constexpr int kMaxLanes = 32;

  // 32 lanes where the CPU runs AVX2 (chosen at run time: wheels stay baseline x86-64), else 16.
  static int widest_lanes() { return cpu_has_avx2() ? 32 : 16; }

  // Allocates nothing for n > kMaxSamples (sums is then not to be called). lanes: 16, else
  // widest_lanes().
  RankCounter(std::size_t n, int bins, const XLogXTable& f, int lanes = 0)
      : n_(n),
        bins_(bins),
        lanes_(lanes == 16 ? 16 : widest_lanes()),
        steps_(f.steps()),
        earlier_(usable(n) * kMaxLanes),
        pending_(usable(n) * kMaxLanes),
        tally_(kMid * kMaxLanes),
        high_(kMaxLanes),
        highs_(kMaxLanes) {}

  int lanes() const { return lanes_; }

  // s[l] = sum over cells of f[c] in the joint histogram of row variable v of `rows` against lane l
  // of `block` (a ColumnLanes block of lanes() columns).
  void sums(const BinGroups& rows, std::size_t v, const std::uint8_t* block, double* s) {
    sample_ = rows.samples(v);
    start_ = rows.start(v);
#ifdef PAIRMI_AVX2_KERNELS
    if (lanes_ == 32) return sums_avx2(block, s);
#endif
    sums_in<16>(block, s);
  }

 private:
  // Ranks 1..kLow - 1 are tallied in registers as they come, kLow..kMid - 1 after the groups
  // (registers again), higher ones (cells of more than kMid samples) one lane at a time. With kMid
  // at 12, 20 or 24 the kernel ran 1.5-2.2 times slower on Student-t data.
  static constexpr std::size_t kLow = 8;
  static constexpr std::size_t kMid = 16;
  static constexpr std::uint64_t kHigh = 0x0101010101010101ULL * (0x100 - kLow);  // bits of ranks >= kLow
  static constexpr std::uint64_t kTop = 0x0101010101010101ULL * (0x100 - kMid);   // bits of ranks >= kMid

#ifdef PAIRMI_AVX2_KERNELS
  [[gnu::target("avx2")]] void sums_avx2(const std::uint8_t* block, double* s) { sums_in<32>(block, s); }
#endif

  // Samples M.. of a group, while M < kLow (unrolled: M is known, so are the ranks to tally).
  template <int W, std::size_t M>
  [[gnu::always_inline]] inline void first_ranks(const std::uint8_t* block, const std::uint8_t* group, std::size_t size,
                                                 std::uint8_t* earlier, typename ByteLanes<W>::type* low) {
    using V = typename ByteLanes<W>::type;
    if constexpr (M < kLow) {
      if (M >= size) return;
      V v, rank = {}, e;
      std::memcpy(&v, block + std::size_t(group[M]) * W, W);
#pragma GCC unroll 8
      for (std::size_t k = 0; k < M; ++k) {
        std::memcpy(&e, earlier + k * W, W);
        rank -= (V)(v == e);
      }
      std::memcpy(earlier + M * W, &v, W);
#pragma GCC unroll 8
      for (std::size_t r = 1; r <= M; ++r) low[r] -= (V)(rank == V{} + std::uint8_t(r));
      first_ranks<W, M + 1>(block, group, size, earlier, low);
    }
  }

  // Inlined into its caller, so that sums_avx2's instantiation is compiled for AVX2 (hence no helper
  // functions taking or returning V: they would not be).
  template <int W>
  [[gnu::always_inline]] inline void sums_in(const std::uint8_t* block, double* s) {
    using V = typename ByteLanes<W>::type;
    std::uint8_t* __restrict tally = tally_.data();  // tally[r][l]: samples of rank r < kMid in lane l
    std::uint8_t* __restrict earlier = earlier_.data();
    std::uint8_t* __restrict pending = pending_.data();  // rank vectors with a lane of kLow or more
    std::size_t held = 0;
    // Rank 0 is not tallied: it is every sample of no higher rank.
    V low[kLow] = {};
    for (int a = 0; a < bins_; ++a) {
      const std::uint8_t* group = sample_ + start_[a];
      const std::size_t size = std::size_t(start_[a + 1] - start_[a]);
      // A group's first kLow samples: sample m has rank <= m, so only ranks 1..m are tallied.
      first_ranks<W, 0>(block, group, size, earlier, low);
      for (std::size_t m = kLow; m < size; ++m) {
        V v, rank = {}, e;
        std::memcpy(&v, block + std::size_t(group[m]) * W, W);
        for (std::size_t k = 0; k < m; ++k) {
          std::memcpy(&e, earlier + k * W, W);
          rank -= (V)(v == e);  // true is -1
        }
        std::memcpy(earlier + m * W, &v, W);
#pragma GCC unroll 8
        for (std::size_t r = 1; r < kLow; ++r) low[r] -= (V)(rank == V{} + std::uint8_t(r));
        // Kept for later if a lane reached kLow: always stored, kept by counting it (tallied here,
        // behind an often mispredicted branch, they cost 10 % more time on Student-t data).
        std::memcpy(pending + held * W, &rank, W);
        held += any_bits(&rank, W, kHigh);
      }
    }
    std::memcpy(tally, low, sizeof low);
    V mid[kMid - kLow] = {};
    std::size_t top = 0;  // those with a lane of kMid or more, moved to the front
    for (std::size_t p = 0; p < held; ++p) {
      V rank;
      std::memcpy(&rank, pending + p * W, W);
#pragma GCC unroll 8
      for (std::size_t r = kLow; r < kMid; ++r) mid[r - kLow] -= (V)(rank == V{} + std::uint8_t(r));
      std::memcpy(pending + top * W, &rank, W);
      top += any_bits(&rank, W, kTop);
    }
    std::memcpy(tally + kLow * W, mid, sizeof mid);
    V zero = V{} + std::uint8_t(n_), e;
    for (std::size_t r = 1; r < kMid; ++r) {
      std::memcpy(&e, tally + r * W, W);
      zero -= e;
    }
    double* high = high_.data();  // sum of steps[rank] over ranks >= kMid, per lane
    if (top) {
      std::uint8_t* highs = highs_.data();  // their count, per lane
      std::fill(high, high + W, 0.0);
      std::fill(highs, highs + W, std::uint8_t{0});
      for (std::size_t p = 0; p < top; ++p) add_high(pending + p * W, W, high, highs);
      std::memcpy(&e, highs, W);
      zero -= e;
    }
    std::memcpy(tally, &zero, W);
    // Summed in a local array: s might alias steps_, which kept the compiler from vectorizing the
    // lanes (-8 % for the whole kernel on Student-t data, one thread).
    double sum[W];
    for (int l = 0; l < W; ++l) sum[l] = double(tally[l]) * steps_[0];
    // Ranks are contiguous (a sample of rank r has one of rank r - 1 in its cell): stop at the first
    // rank no lane reached.
    for (std::size_t r = 1; r < kMid && any_bits(tally + r * W, W, ~0ULL); ++r) {
      const double step = steps_[r];
      for (int l = 0; l < W; ++l) sum[l] += double(tally[r * W + std::size_t(l)]) * step;
    }
    if (top)
      for (int l = 0; l < W; ++l) sum[l] += high[l];
    std::copy(sum, sum + W, s);
  }

  // Adds steps[rank] to high[l] and counts the sample in highs[l], for each of the w lanes l whose
  // rank (byte l at `rank`) is kMid or more.
  void add_high(const std::uint8_t* rank, int w, double* high, std::uint8_t* highs) const {
    std::uint64_t words[kMaxLanes / 8];
    std::memcpy(words, rank, std::size_t(w));
    for (int k = 0; k < w / 8; ++k)
      for (std::uint64_t bits = words[k] & kTop; bits != 0;) {
        const int shift = __builtin_ctzll(bits) / 8 * 8;  // the lowest such byte
        const int l = k * 8 + shift / 8;
        high[l] += steps_[(words[k] >> shift) & 0xFF];
        ++highs[l];
        bits &= ~(std::uint64_t{0xFF} << shift);
      }
  }

  // Does any of the w bytes at p have a bit of mask (one byte pattern, repeated) set?
  static bool any_bits(const void* p, int w, std::uint64_t mask) {
    std::uint64_t h[kMaxLanes / 8];
    std::memcpy(h, p, std::size_t(w));
    std::uint64_t bits = 0;
    for (int k = 0; k < w / 8; ++k) bits |= h[k];
    return (bits & mask) != 0;
  }

  static std::size_t usable(std::size_t n) { return n <= kMaxSamples ? n : 0; }

  std::size_t n_;
  int bins_, lanes_;
  const double* steps_;
  const std::uint8_t *sample_ = nullptr, *start_ = nullptr;  // the row's groups (BinGroups)
  std::vector<std::uint8_t> earlier_, pending_, tally_;      // [position in group, sample or rank][lane]
  std::vector<double> high_;                                 // add_high's sums per lane
  std::vector<std::uint8_t> highs_;                          // and counts
};

}  // namespace pairmi

// All-pairs binned mutual information: one pass over the samples' codes per pair into a small joint
// histogram, entropies from the c*ln(c) table, pairs tiled and spread over OpenMP threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "pairmi/tiles.hpp"
#include "pairmi/xlogx.hpp"

namespace pairmi {

// sizeof(T) consecutive bytes from p as one T (one load instruction).
template <class T, class Code>
T load_unaligned(const Code* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

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
      : n_(n), cells_(std::size_t(bins) * bins), bins_(bins),
        f_(f.data()), g_(f.steps()), sum_while_counting_(sum_while_counting(n, bins)), base_(n), base16_(n),
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
    const std::uint8_t *__restrict y0 = y[0], *__restrict y1 = y[1], *__restrict y2 = y[2],
                       *__restrict y3 = y[3];
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
      count4(y);
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
  [[gnu::noinline]] void count4(const std::uint8_t* const* y) {
    Count* __restrict h0 = hist_.data();
    Count* __restrict h1 = h0 + cells_;
    Count* __restrict h2 = h1 + cells_;
    Count* __restrict h3 = h2 + cells_;
    const std::uint8_t *__restrict y0 = y[0], *__restrict y1 = y[1], *__restrict y2 = y[2],
                       *__restrict y3 = y[3];
    const std::uint16_t* __restrict base = base16_.data();
    const auto count = [&](std::uint32_t a, std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                           std::uint32_t c3) {
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

// Codes of `layers` stacked sets of `cols` variables: codes[(l * cols + c) * n + t], with each
// variable's entropy (nats, from the same XLogXTable as the run) in entropy[l * cols + c].
struct CodedLayers {
  const std::uint8_t* codes;
  const double* entropy;
  std::size_t cols;
};

// One thread's worker: MI of each pair of a tile, four columns at a time.
template <class Count, class Out>
class BinnedTileWorker {
 public:
  BinnedTileWorker(const CodedLayers& x, const CodedLayers& y, std::size_t n, int bins, const XLogXTable& f,
                   bool clamp, const PairWriter<Out>& write)
      : x_(x), y_(y), n_(n), f_(f), clamp_(clamp), write_(write), counter_(n, bins, f) {}

  void operator()(const Tile& t) {
    constexpr int kGroup = PairCounter<Count>::kGroup;
    const std::uint8_t* xc = x_.codes + t.layer * x_.cols * n_;
    const std::uint8_t* yc = y_.codes + t.layer * y_.cols * n_;
    const double* hx = x_.entropy + t.layer * x_.cols;
    const double* hy = y_.entropy + t.layer * y_.cols;
    const std::uint8_t* cols[kGroup];
    double s[kGroup];
    for (std::size_t i = t.r0; i < t.r1; ++i) {
      counter_.set_row(xc + i * n_);
      std::size_t j = t.c0;
      if (write_.upper && j <= i) {
        write_(t, i, i, hx[i]);  // MI of a variable with itself: its entropy
        j = i + 1;
      }
      while (j < t.c1) {
        const int m = static_cast<int>(std::min<std::size_t>(kGroup, t.c1 - j));
        for (int k = 0; k < m; ++k) cols[k] = yc + (j + k) * n_;
        counter_.joint_sums(cols, m, s);
        for (int k = 0; k < m; ++k) {
          const double mi = hx[i] + hy[j + k] - f_.entropy(s[k]);
          // Plug-in MI is >= 0 exactly: clamping removes only rounding below zero. Corrected
          // estimates may be negative and are kept so.
          write_(t, i, j + k, clamp_ ? std::max(0.0, mi) : mi);
        }
        j += m;
      }
    }
  }

 private:
  const CodedLayers &x_, &y_;
  std::size_t n_;
  const XLogXTable& f_;
  bool clamp_;
  PairWriter<Out> write_;
  PairCounter<Count> counter_;
};

template <class Count, class Out>
bool run_binned(const std::vector<Tile>& tiles, const CodedLayers& x, const CodedLayers& y, std::size_t n, int bins,
                const XLogXTable& f, bool clamp, const PairWriter<Out>& write, int threads,
                const TileMonitor& monitor) {
  return for_each_tile(tiles, threads, monitor,
                       [&] { return BinnedTileWorker<Count, Out>(x, y, n, bins, f, clamp, write); });
}

// Binned MI of every pair of variables, for every layer. If y is null, pairs are x against itself
// (square, symmetric output, entropies on the diagonal); otherwise x against y (rectangular).
// out holds layers x x.cols x (y ? y->cols : x.cols) values, in nats times `scale`. Entropies in x
// and y must come from column_entropies with the same miller_madow. Returns false if the monitor
// stopped the run.
template <class Out>
bool binned_mi(const CodedLayers& x, const CodedLayers* y, std::size_t layers, std::size_t n, int bins,
               double scale, Out* out, int threads = 1, const TileMonitor& monitor = {},
               bool miller_madow = false) {
  const bool upper = (y == nullptr);
  const CodedLayers& yy = upper ? x : *y;
  // A tile's row and column codes (2 * size * n bytes) stay well inside a core's L2 cache.
  const std::size_t tile_size =
      std::clamp<std::size_t>((std::size_t{64} << 10) / std::max<std::size_t>(n, 1) / 4 * 4, 4, 64);
  const auto tiles = make_tiles(layers, x.cols, yy.cols, upper, tile_size);
  const XLogXTable f(n, miller_madow);
  const PairWriter<Out> write{out, x.cols, yy.cols, upper, scale};
  const bool clamp = !miller_madow;
  // Byte counts suit the loop that sums while counting (n = 90); four-byte counts the loop that
  // only counts (two-byte read-modify-writes made it 23 % slower on Zen 1, at 4096 samples).
  if (n <= 0xFF && sum_while_counting(n, bins))
    return run_binned<std::uint8_t>(tiles, x, yy, n, bins, f, clamp, write, threads, monitor);
  return run_binned<std::uint32_t>(tiles, x, yy, n, bins, f, clamp, write, threads, monitor);
}

// Entropy (nats) of each of `cols` coded variables (codes[c * n + t]), plug-in or Miller-Madow.
inline void column_entropies(const std::uint8_t* codes, std::size_t cols, std::size_t n, int bins,
                             double* entropy, int threads = 1, bool miller_madow = false) {
  const XLogXTable f(n, miller_madow);
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<std::uint32_t> hist;
#pragma omp for schedule(static)
    for (long c = 0; c < static_cast<long>(cols); ++c)
      entropy[c] = column_entropy(codes + std::size_t(c) * n, n, bins, f, hist);
  }
  (void)threads;
}

}  // namespace pairmi

// All-pairs Kraskov-Stoegbauer-Grassberger MI (algorithm 1), computed as scikit-learn's
// mutual_info_regression computes it for two continuous variables: each variable scaled to unit
// variance, max-norm in the joint space, eps_i = distance to the k-th neighbour, n_x(i) and n_y(i)
// = other samples strictly closer than eps_i in each marginal, and
//     MI = psi(N) + psi(k) - <psi(n_x + 1)> - <psi(n_y + 1)>   (nats), clipped at 0.
// Neighbours are found in a window around each sample in one variable's sorted order, so a pair
// costs about N * sqrt(k N) distance evaluations rather than N^2. Consecutive samples of that order
// walk together, one per vector lane, a fixed chunk of neighbours at a time: the loads are
// contiguous and the only branches are the checks between chunks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "pairmi/tiles.hpp"

namespace pairmi {

// Neighbours offered on each side between two checks of whether the walk can stop.
constexpr std::size_t kKsgChunk = 16;
// Guard values beyond each end of a sorted column: a walk reads up to lanes + kKsgChunk - 1
// positions past an end (four lanes at most, with room to spare).
constexpr std::size_t kKsgGuard = kKsgChunk + 8;

// Each variable of `layers` stacked row-major (n, d) matrices, scaled to unit variance (population
// std, as sklearn's scale(); a constant variable keeps scale 1) and sorted once.
struct SortedColumns {
  std::size_t cols = 0, n = 0;           // cols = layers * d, indexed l * d + c
  std::vector<double> value;             // [col * n + t]: scaled value of sample t
  std::vector<double> sorted;            // srt(col)[p]: p-th smallest scaled value, -inf / +inf guards
  std::vector<std::uint32_t> order;      // [col * n + p]: sample at sorted position p
  std::vector<std::uint32_t> position;   // [col * n + t]: sorted position of sample t
  std::vector<std::uint8_t> constant;    // [col]: all values equal

  std::size_t stride() const { return n + 2 * kKsgGuard; }
  const double* val(std::size_t c) const { return &value[c * n]; }
  const double* srt(std::size_t c) const { return &sorted[c * stride() + kKsgGuard]; }
  const std::uint32_t* ord(std::size_t c) const { return &order[c * n]; }
  const std::uint32_t* pos(std::size_t c) const { return &position[c * n]; }
};

template <class T>
SortedColumns sort_columns(const T* x, std::size_t layers, std::size_t n, std::size_t d, int threads = 1) {
  SortedColumns s;
  s.cols = layers * d;
  s.n = n;
  s.value.resize(s.cols * n);
  s.sorted.resize(s.cols * s.stride());
  s.order.resize(s.cols * n);
  s.position.resize(s.cols * n);
  s.constant.resize(s.cols);
#pragma omp parallel for schedule(dynamic, 16) num_threads(std::max(1, threads))
  for (long col = 0; col < static_cast<long>(s.cols); ++col) {
    const std::size_t c = std::size_t(col), l = c / d, k = c % d;
    double* v = &s.value[c * n];
    for (std::size_t t = 0; t < n; ++t) v[t] = static_cast<double>(x[(l * n + t) * d + k]);
    double mean = 0.0, var = 0.0;
    for (std::size_t t = 0; t < n; ++t) mean += v[t];
    mean /= double(n);
    for (std::size_t t = 0; t < n; ++t) var += (v[t] - mean) * (v[t] - mean);
    const double sd = std::sqrt(var / double(n));
    if (sd > 0)
      for (std::size_t t = 0; t < n; ++t) v[t] /= sd;
    std::uint32_t* o = &s.order[c * n];
    std::iota(o, o + n, std::uint32_t{0});
    std::stable_sort(o, o + n, [v](std::uint32_t a, std::uint32_t b) { return v[a] < v[b]; });
    double* sorted = &s.sorted[c * s.stride()];
    std::fill(sorted, sorted + kKsgGuard, -std::numeric_limits<double>::infinity());
    std::fill(sorted + kKsgGuard + n, sorted + s.stride(), std::numeric_limits<double>::infinity());
    for (std::size_t p = 0; p < n; ++p) {
      sorted[kKsgGuard + p] = v[o[p]];
      s.position[c * n + o[p]] = static_cast<std::uint32_t>(p);
    }
    s.constant[c] = sorted[kKsgGuard] == sorted[kKsgGuard + n - 1];
  }
  (void)threads;
  return s;
}

// psi(m) for m = 0..n (psi(0) unused): psi(1) = -Euler's gamma, psi(m + 1) = psi(m) + 1/m.
inline std::vector<double> digamma_table(std::size_t n) {
  std::vector<double> psi(n + 1, 0.0);
  psi[1] = -0.57721566490153286060651209;
  for (std::size_t m = 1; m < n; ++m) psi[m + 1] = psi[m] + 1.0 / double(m);
  return psi;
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define PAIRMI_KSG_AVX2 1  // four lanes in one register where the CPU has AVX2
#endif

// W doubles handled at once, and the comparison masks (a dependent vector_size is not applied in
// templates, hence one per W). Two lanes are one SSE2 or NEON register.
template <int W>
struct DoubleLanes;
template <>
struct DoubleLanes<2> {
  using type = double __attribute__((vector_size(16)));
  using mask = long long __attribute__((vector_size(16)));
};
template <>
struct DoubleLanes<4> {
  using type = double __attribute__((vector_size(32)));
  using mask = long long __attribute__((vector_size(32)));
};

// Whether a < b in any lane. Helpers taking vectors are always inlined, so that they are compiled
// for the instruction set of the kernel that calls them (and take no vector by value: that would
// change the ABI between instruction sets).
template <int W>
[[gnu::always_inline]] inline bool any_below(const typename DoubleLanes<W>::type& a,
                                             const typename DoubleLanes<W>::type& b) {
  const auto below = (typename DoubleLanes<W>::mask)(a < b);  // true lanes are -1
  long long any = 0;
  for (int l = 0; l < W; ++l) any |= below[l];
  return any != 0;
}

// Inserts distances d into each lane's ascending k best, without branches (whether a distance
// enters is unpredictable): best[m] becomes min(best[m], max(best[m-1], d)).
template <int W, int K>
[[gnu::always_inline]] inline void offer(typename DoubleLanes<W>::type* best, int k,
                                         const typename DoubleLanes<W>::type& d) {
  using V = typename DoubleLanes<W>::type;
  for (int m = (K > 0 ? K : k) - 1; m > 0; --m) {
    const V up = best[m - 1] > d ? best[m - 1] : d;
    best[m] = best[m] < up ? best[m] : up;
  }
  best[0] = best[0] < d ? best[0] : d;
}

// gap = the x distance from W samples at xp to the W samples `offset` positions to the right
// (Dir = 1) or left (Dir = -1) of position p in the sorted values v.
template <int W, int Dir>
[[gnu::always_inline]] inline void side_gap(const double* v, std::size_t p, std::size_t offset,
                                            const typename DoubleLanes<W>::type& vp,
                                            typename DoubleLanes<W>::type& gap) {
  typename DoubleLanes<W>::type q;
  std::memcpy(&q, v + p + std::ptrdiff_t(offset) * Dir, sizeof q);
  gap = Dir > 0 ? q - vp : vp - q;  // >= 0: v is sorted
}

// Offers each lane's k best of one side the neighbours at offsets o..end - 1 (o ends at end).
template <int W, int K, int Dir>
[[gnu::always_inline]] inline void offer_side(const double* xs, const double* y_by_x, std::size_t p, std::size_t& o,
                                              std::size_t end, const typename DoubleLanes<W>::type& xp,
                                              const typename DoubleLanes<W>::type& yp,
                                              typename DoubleLanes<W>::type* best, int k) {
  using V = typename DoubleLanes<W>::type;
  using M = typename DoubleLanes<W>::mask;
  for (; o < end; ++o) {
    V gap, yq;
    side_gap<W, Dir>(xs, p, o, xp, gap);
    std::memcpy(&yq, y_by_x + p + std::ptrdiff_t(o) * Dir, sizeof yq);
    const V dy = (V)((M)(yq - yp) & (M{} + 0x7fffffffffffffffLL));  // |dy|: the sign bit cleared
    offer<W, K>(best, k, gap > dy ? gap : dy);
  }
}

// Adds to each lane's count the neighbours at offsets o..end - 1 of one side closer than r.
template <int W, int Dir>
[[gnu::always_inline]] inline void count_side(const double* v, std::size_t p, std::size_t o, std::size_t end,
                                              const typename DoubleLanes<W>::type& vp,
                                              const typename DoubleLanes<W>::type& r,
                                              typename DoubleLanes<W>::mask& count) {
  for (; o < end; ++o) {
    typename DoubleLanes<W>::type gap;
    side_gap<W, Dir>(v, p, o, vp, gap);
    count -= (typename DoubleLanes<W>::mask)(gap < r);  // true is -1
  }
}

// Adds to each lane's count its neighbours on one side closer than r: chunks of kKsgChunk offsets
// until the next gap of every lane reaches r.
template <int W, int Dir>
[[gnu::always_inline]] inline void count_within(const double* v, std::size_t p,
                                                const typename DoubleLanes<W>::type& vp,
                                                const typename DoubleLanes<W>::type& r,
                                                typename DoubleLanes<W>::mask& count) {
  typename DoubleLanes<W>::type gap;
  std::size_t o = 1;
  do {
    count_side<W, Dir>(v, p, o, o + kKsgChunk, vp, r, count);
    o += kKsgChunk;
    side_gap<W, Dir>(v, p, o, vp, gap);
  } while (any_below<W>(gap, r));
}

// Per thread: one pair's arrays.
struct KsgScratch {
  std::vector<double> y_by_x;    // the column variable at the row variable's sorted positions, guarded
  std::vector<double> eps;       // k-th neighbour distance by row variable position
  std::vector<double> eps_by_y;  // the same by column variable position
  std::vector<long long> nx, ny;  // marginal counts by row position and by column position
  // The k best distances of each side when k is not 3 (bytes, aligned by hand: a heap array of a
  // 32-byte vector type is only 16-byte aligned in code compiled without AVX).
  std::vector<unsigned char> best_bytes;
  KsgScratch(std::size_t n, int k)
      : y_by_x(n + 2 * kKsgGuard, 0.0), eps(n), eps_by_y(n), nx(n), ny(n), best_bytes(2 * std::size_t(k) * 32 + 32) {}

  template <int W>
  typename DoubleLanes<W>::type* best() {
    const auto at = reinterpret_cast<std::uintptr_t>(best_bytes.data());
    return reinterpret_cast<typename DoubleLanes<W>::type*>((at + 31) & ~std::uintptr_t(31));
  }
};

// One pair's variables: the row variable x's sorted values (guarded), sample order and positions by
// sample; the column variable y by sample, its sample order and sorted values (guarded).
struct KsgPair {
  const double* xs;
  const std::uint32_t *xo, *xpos;
  const double* yv;
  const std::uint32_t* yo;
  const double* ys;
};

// The body of one pair's KSG in W lanes (inlined into its callers, so that the AVX2 instantiation is
// compiled for AVX2; so are its helpers). Returns the sum over samples of psi(n_x + 1) + psi(n_y + 1).
// K = k known at compile time, or 0. Needs n >= W.
template <int W, int K>
[[gnu::always_inline]] inline double ksg_pair_sum(const KsgPair& pair, std::size_t n, int k, const double* psi,
                                                  KsgScratch& scratch) {
  const double *xs = pair.xs, *ys = pair.ys;
  using V = typename DoubleLanes<W>::type;
  using M = typename DoubleLanes<W>::mask;
  constexpr double inf = std::numeric_limits<double>::infinity();
  const int kk = K > 0 ? K : k;
  double* y_by_x = scratch.y_by_x.data() + kKsgGuard;
  for (std::size_t p = 0; p < n; ++p) y_by_x[p] = pair.yv[pair.xo[p]];
  // k-th neighbour distances and n_x: the samples at sorted positions p..p+W-1 walk outwards, kKsgChunk
  // neighbours at a time, each side keeping its own k best distances, until on both sides the next x
  // gap of every lane is at least its k-th distance over both sides (a neighbour that far cannot be
  // closer). The last block starts at n - W and repeats some samples (with the same results).
  V local[2 * (K > 0 ? K : 1)];
  V* right = local;
  V* left = local + (K > 0 ? K : 1);
  if (K == 0) {
    right = scratch.best<W>();
    left = right + kk;
  }
  for (std::size_t p0 = 0; p0 < n; p0 += W) {
    const std::size_t p = std::min(p0, n - W);
    V xp, yp, kth;
    std::memcpy(&xp, xs + p, sizeof xp);
    std::memcpy(&yp, y_by_x + p, sizeof yp);
    for (int m = 0; m < kk; ++m) right[m] = left[m] = V{} + inf;
    std::size_t hi = 1, lo = 1;
    bool more_right = true, more_left = true;
    do {
      if (more_right) offer_side<W, K, 1>(xs, y_by_x, p, hi, hi + kKsgChunk, xp, yp, right, kk);
      if (more_left) offer_side<W, K, -1>(xs, y_by_x, p, lo, lo + kKsgChunk, xp, yp, left, kk);
      // The k-th smallest of both sides' sorted k best: min over i of max(right[i-1], left[k-1-i]).
      kth = right[kk - 1] < left[kk - 1] ? right[kk - 1] : left[kk - 1];
      for (int i = 1; i < kk; ++i) {
        const V m = right[i - 1] > left[kk - 1 - i] ? right[i - 1] : left[kk - 1 - i];
        kth = kth < m ? kth : m;
      }
      V gap;
      side_gap<W, 1>(xs, p, hi, xp, gap);
      more_right = any_below<W>(gap, kth);
      side_gap<W, -1>(xs, p, lo, xp, gap);
      more_left = any_below<W>(gap, kth);
    } while (more_right || more_left);
    std::memcpy(scratch.eps.data() + p, &kth, sizeof kth);
    // Every sample with x gap below the k-th distance was walked.
    M count = {};
    count_side<W, 1>(xs, p, 1, hi, xp, kth, count);
    count_side<W, -1>(xs, p, 1, lo, xp, kth, count);
    std::memcpy(scratch.nx.data() + p, &count, sizeof count);
  }

  // n_y: in the column variable's order, each side on its own against the stored distances.
  double* eps_by_y = scratch.eps_by_y.data();
  for (std::size_t q = 0; q < n; ++q) eps_by_y[q] = scratch.eps[pair.xpos[pair.yo[q]]];
  for (std::size_t p0 = 0; p0 < n; p0 += W) {
    const std::size_t p = std::min(p0, n - W);
    V vp, r;
    std::memcpy(&vp, ys + p, sizeof vp);
    std::memcpy(&r, eps_by_y + p, sizeof r);
    M count = {};
    count_within<W, 1>(ys, p, vp, r, count);
    count_within<W, -1>(ys, p, vp, r, count);
    std::memcpy(scratch.ny.data() + p, &count, sizeof count);
  }
  double total[2] = {};
  for (std::size_t t = 0; t < n; ++t) {
    total[0] += psi[scratch.nx[t] + 1];
    total[1] += psi[scratch.ny[t] + 1];
  }
  return total[0] + total[1];
}

// ksg_pair_sum with k = 3 compiled as a constant (the common case), else k as given.
template <int W>
[[gnu::always_inline]] inline double ksg_pair_sum_for_k(const KsgPair& pair, std::size_t n, int k,
                                                        const double* psi, KsgScratch& scratch) {
  return k == 3 ? ksg_pair_sum<W, 3>(pair, n, k, psi, scratch) : ksg_pair_sum<W, 0>(pair, n, k, psi, scratch);
}

#ifdef PAIRMI_KSG_AVX2
[[gnu::target("avx2")]] inline double ksg_pair_sum_avx2(const KsgPair& pair, std::size_t n, int k, const double* psi,
                                                         KsgScratch& scratch) {
  return ksg_pair_sum_for_k<4>(pair, n, k, psi, scratch);
}
#endif

// Lanes the KSG kernel runs: 4 where the CPU has AVX2 (chosen at run time: wheels stay baseline
// x86-64), else 2.
inline int ksg_widest_lanes() {
#ifdef PAIRMI_KSG_AVX2
  if (__builtin_cpu_supports("avx2")) return 4;
#endif
  return 2;
}

// Pairs per tile side (scheduling and progress granularity; pairs are computed one by one).
inline std::size_t ksg_tile_side(std::size_t n) { return n <= 2048 ? 16 : n <= 8192 ? 8 : 4; }

// Bytes of scratch one thread's KSG worker allocates.
inline std::size_t ksg_worker_bytes(std::size_t n, int k) {
  return sizeof(double) * (5 * n + 2 * kKsgGuard + 8 * std::size_t(k) + 4);
}

// One thread's KSG worker: each pair of a tile on its own (x's variables as rows).
template <class Out>
class KsgTileWorker {
 public:
  KsgTileWorker(const SortedColumns& x, const SortedColumns& y, std::size_t d_x, std::size_t d_y, int k,
                const std::vector<double>& psi, const PairWriter<Out>& write, int lanes)
      : x_(x), y_(y), dx_(d_x), dy_(d_y), k_(k), psi_(psi), write_(write),
        lanes_(x.n >= 4 && lanes == 4 ? 4 : 2), scratch_(x.n, k) {}

  void operator()(const Tile& t) {
    const std::size_t n = x_.n;
    for (std::size_t i = t.r0; i < t.r1; ++i)
      for (std::size_t j = std::max(t.c0, write_.upper ? i : 0); j < t.c1; ++j) {
        const std::size_t a = t.layer * dx_ + i, b = t.layer * dy_ + j;
        double nats = 0.0;  // a constant variable shares nothing
        if (write_.upper && i == j)
          nats = std::numeric_limits<double>::infinity();  // a continuous variable with itself
        else if (!x_.constant[a] && !y_.constant[b])
          nats = std::max(0.0, psi_[n] + psi_[std::size_t(k_)] - pair_sum(a, b) / double(n));
        write_(t, i, j, nats);
      }
  }

 private:
  double pair_sum(std::size_t a, std::size_t b) {
    const KsgPair pair{x_.srt(a), x_.ord(a), x_.pos(a), y_.val(b), y_.ord(b), y_.srt(b)};
#ifdef PAIRMI_KSG_AVX2
    if (lanes_ == 4) return ksg_pair_sum_avx2(pair, x_.n, k_, psi_.data(), scratch_);
#endif
    return ksg_pair_sum_for_k<2>(pair, x_.n, k_, psi_.data(), scratch_);
  }

  const SortedColumns &x_, &y_;
  std::size_t dx_, dy_;
  int k_;
  const std::vector<double>& psi_;
  PairWriter<Out> write_;
  int lanes_;
  KsgScratch scratch_;
};

// KSG MI of every pair, every layer: x (layers x d_x variables) against itself (y null: symmetric,
// +inf on the diagonal) or against y. out is layers x d_x x d_y, nats times `scale`. Needs k < n.
// lanes: 2, or 0 for the widest the CPU runs (ksg_widest_lanes); the results are the same.
template <class Out>
bool ksg_mi(const SortedColumns& x, const SortedColumns* y, std::size_t layers, int k, double scale, Out* out,
            int threads = 1, const TileMonitor& monitor = {}, int lanes = 0) {
  const bool upper = (y == nullptr);
  const SortedColumns& yy = upper ? x : *y;
  const std::size_t dx = x.cols / layers, dy = yy.cols / layers;
  const auto tiles = make_tiles(layers, dx, dy, upper, ksg_tile_side(x.n));
  const auto psi = digamma_table(x.n);
  const PairWriter<Out> write{out, dx, dy, upper, scale};
  const int w = lanes == 2 ? 2 : ksg_widest_lanes();
  return for_each_tile(tiles, threads, monitor,
                       [&] { return KsgTileWorker<Out>(x, yy, dx, dy, k, psi, write, w); });
}

}  // namespace pairmi

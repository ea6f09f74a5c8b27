// One pair's KSG sum: the samples walk outwards in lanes to their k-th neighbour and count their
// marginal neighbours in float32, near ties recomputed in float64 (ksg_point_exact).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "pairmi/ksg_columns.hpp"
#include "pairmi/ksg_lanes.hpp"
#include "pairmi/simd.hpp"
#include "pairmi/tiles.hpp"

namespace pairmi {

// Samples walked between two checks for Ctrl-C inside one pair (a power of two): a pair of 10^6
// samples takes seconds, a check about a millisecond's work, or 0.1 % of it.
constexpr std::size_t kKsgPollEvery = std::size_t{1} << 16;
// Band half-width around the float32 eps of a sample whose centred float32 values reach a (the
// larger of its two), per unit of a + eps: 4e, where e bounds |float32 - float64| of its distances
// d <= eps + band. The float64 centring and subtraction err by 2^-53 of |value| and of d, the float32
// conversions and subtraction by 2^-24 of them: together at most 2^-23 (a + d). e here is twice
// that, which also covers rounding the band and its ends in float32. Values below float32's normal
// range (|value| < 2^-126) lose up to 2^-150 each instead: the floor covers those.
constexpr float kBandPerValue = 0x1p-21f;
constexpr float kBandFloor = 0x1p-146f;

// Samples at each end of the column variable's order that walk in that order (with Search): 5 %,
// in whole blocks of eight (3 % and 8 % were slower on Student-t data at 4096 samples).
inline std::size_t ksg_tail(std::size_t n) { return n / 20 / 8 * 8; }

// The k-th neighbour distances of the W samples at positions p..p+W-1 of the sorted float32
// values v (guarded), the other variable at the same positions in `other`, and their bands: they
// walk outwards kKsgChunk neighbours at a time, each side keeping its own k best distances
// (right, left), until on both sides the next gap of every lane is beyond its band (a neighbour
// that far cannot be closer, nor in the band). With Skip, lanes set in `skip` do not hold the walk
// up (their results are not used). hi, lo: the offsets each side walked to.
template <int W, int K, bool Skip>
[[gnu::always_inline]] inline void walk_block(const float* v, const float* other, std::size_t p, int kk,
                                              typename FloatLanes<W>::type* right, typename FloatLanes<W>::type* left,
                                              const typename FloatLanes<W>::mask& skip,
                                              typename FloatLanes<W>::type& kth, typename FloatLanes<W>::type& band,
                                              std::size_t& hi, std::size_t& lo) {
  using V = typename FloatLanes<W>::type;
  using M = typename FloatLanes<W>::mask;
  constexpr float inf = std::numeric_limits<float>::infinity();
  V vp, op;
  std::memcpy(&vp, v + p, sizeof vp);
  std::memcpy(&op, other + p, sizeof op);
  const V va = (V)((M)vp & (M{} + 0x7fffffff)), oa = (V)((M)op & (M{} + 0x7fffffff));
  const V magnitude = va > oa ? va : oa;
  for (int m = 0; m < kk; ++m) right[m] = left[m] = V{} + inf;
  hi = lo = 1;
  bool more_right = true, more_left = true;
  do {
    if (more_right) offer_side<W, K, 1>(v, other, p, hi, hi + kKsgChunk, vp, op, right, kk);
    if (more_left) offer_side<W, K, -1>(v, other, p, lo, lo + kKsgChunk, vp, op, left, kk);
    // The k-th smallest of both sides' sorted k best: min over i of max(right[i-1], left[k-1-i]).
    lanes_extreme<W, true>(right[kk - 1], left[kk - 1], kth);
    for (int i = 1; i < kk; ++i) {
      V m;
      lanes_extreme<W, false>(right[i - 1], left[kk - 1 - i], m);
      lanes_extreme<W, true>(kth, m, kth);
    }
    band = (magnitude + kth) * kBandPerValue + kBandFloor;
    V upper = kth + band;
    if (Skip) upper = (V)((M)upper & ~skip);  // +0: no gap is below it
    V gap;
    side_gap<W, 1>(v, p, hi, vp, gap);
    more_right = any_below<W>(gap, upper);
    side_gap<W, -1>(v, p, lo, vp, gap);
    more_left = any_below<W>(gap, upper);
  } while (more_right || more_left);
}

// Per thread: one pair's arrays.
struct KsgScratch {
  std::vector<float> y_by_x;                 // the column variable at the row variable's sorted positions, guarded
  std::vector<float> eps;                    // float32 k-th neighbour distance by row variable position
  std::vector<float> eps_by_y;               // the same by column variable position
  std::vector<float> band;                   // band half-width by row variable position
  std::vector<float> band_by_y;              // the same by column variable position
  std::vector<std::int32_t> nx, ny;          // certain marginal counts by row position and by column position
  std::vector<std::int32_t> near_x, near_y;  // distances within the band, by row and by column position
  std::vector<double> exact_best;            // k best distances of a sample recomputed in float64
  std::vector<float> x_by_y;                 // the row variable at the column variable's sorted positions, guarded
  std::vector<std::int32_t> skip;            // by row position: -1 for a sample in the column variable's tails
  // The k best distances of each side when k is not 3 (bytes, aligned by hand: a heap array of a
  // 32-byte vector type is only 16-byte aligned in code compiled without AVX).
  std::vector<unsigned char> best_bytes;
  StopCheck should_stop;  // asked every kKsgPollEvery samples of a pair's walks
  KsgScratch(std::size_t n, int k)
      : y_by_x(n + 2 * kKsgGuard, 0.0f),
        eps(n),
        eps_by_y(n),
        band(n),
        band_by_y(n),
        nx(n),
        ny(n),
        near_x(n),
        near_y(n),
        exact_best(std::size_t(k)),
        x_by_y(n + 2 * kKsgGuard, 0.0f),
        skip(n),
        best_bytes(2 * std::size_t(k) * 32 + 32) {}

  template <int W>
  typename FloatLanes<W>::type* best() {
    const auto at = reinterpret_cast<std::uintptr_t>(best_bytes.data());
    return reinterpret_cast<typename FloatLanes<W>::type*>((at + 31) & ~std::uintptr_t(31));
  }
};

// One pair's variables: the row variable x's sorted values (float64 and float32, guarded), sample
// order and positions by sample; the column variable y's values by sample, sample order, positions
// and sorted values (both, guarded).
struct KsgPair {
  const double* xs;
  const float* xs32;
  const std::uint32_t *xo, *xpos;
  const double* yv;
  const std::uint32_t *yo, *ypos;
  const double* ys;
  const float* ys32;
};

// The pair of variable a of x (rows) and variable b of y (columns).
inline KsgPair ksg_pair(const SortedColumns& x, std::size_t a, const SortedColumns& y, std::size_t b) {
  return {x.srt(a), x.srt32(a), x.ord(a), x.pos(a), y.val(b), y.ord(b), y.pos(b), y.srt(b), y.srt32(b)};
}

// The float64 distance from position at to at + offset of the sorted values v, computed as the
// walks compute it (larger minus smaller).
inline double sorted_gap(const double* v, std::ptrdiff_t at, std::ptrdiff_t offset) {
  return offset > 0 ? v[at + offset] - v[at] : v[at] - v[at + offset];
}

// psi(n_x + 1) + psi(n_y + 1) of the sample at x position p, all in float64 as the definition
// reads: its neighbours outwards in x on each side until the x gap reaches the k-th max-norm
// distance so far; then the strict counts.
inline double ksg_point_exact(const KsgPair& pair, std::size_t n, std::size_t p, int k, const double* psi,
                              double* best) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  const double *xs = pair.xs, *ys = pair.ys;  // guarded: gaps past an end are infinite
  const std::ptrdiff_t at = std::ptrdiff_t(p);
  const double yp = pair.yv[pair.xo[p]];
  std::fill(best, best + k, inf);
  for (const std::ptrdiff_t dir : {1, -1})  // one side, then the other: each loop's exit is predictable
    for (std::ptrdiff_t o = dir;; o += dir) {
      const double gap = sorted_gap(xs, at, o);
      if (!(gap < best[k - 1])) break;  // a farther x gap cannot be closer in max-norm
      double d = std::max(gap, std::fabs(pair.yv[pair.xo[at + o]] - yp));
      for (int m = 0; m < k && d < best[k - 1]; ++m)
        if (d < best[m]) std::swap(d, best[m]);  // sorted insertion
    }
  const double eps = best[k - 1];
  // Others strictly within eps on each side of position `at` of n sorted values: the gaps grow
  // away from it (rounding is monotone), so a binary search finds the last one below eps.
  const auto strictly_within = [eps, n = std::ptrdiff_t(n)](const double* v, std::ptrdiff_t at) {
    std::ptrdiff_t count = 0;
    for (const std::ptrdiff_t dir : {1, -1}) {
      std::ptrdiff_t within = 0, beyond = dir > 0 ? n - at : at + 1;  // offsets: within < eps <= beyond
      while (beyond - within > 1) {
        const std::ptrdiff_t mid = within + (beyond - within) / 2;
        (sorted_gap(v, at, dir * mid) < eps ? within : beyond) = mid;
      }
      count += within;
    }
    return std::size_t(count);
  };
  return psi[strictly_within(xs, at) + 1] + psi[strictly_within(ys, pair.ypos[pair.xo[p]]) + 1];
}

// The sum over samples of psi(n_x + 1) + psi(n_y + 1), every sample by ksg_point_exact.
inline double ksg_pair_sum_exact(const KsgPair& pair, std::size_t n, int k, const double* psi, KsgScratch& scratch) {
  double total = 0.0;
  for (std::size_t p = 0; p < n; ++p) {
    if (p % kKsgPollEvery == kKsgPollEvery - 1 && scratch.should_stop()) return 0.0;  // discarded
    total += ksg_point_exact(pair, n, p, k, psi, scratch.exact_best.data());
  }
  return total;
}

// The body of one pair's KSG in W float32 lanes (inlined into its callers, so that the AVX2
// instantiation is compiled for AVX2; so are its helpers). Returns the sum over samples of
// psi(n_x + 1) + psi(n_y + 1). K = k known at compile time, or 0. Search (W = 8 only): the counts
// by count_by_search_avx2, not by walks, and the column variable's tails walking its order.
// Needs n >= W.
template <int W, int K, bool Search>
[[gnu::always_inline]] inline double ksg_pair_sum(const KsgPair& pair, std::size_t n, int k, const double* psi,
                                                  KsgScratch& scratch) {
  const float *xs = pair.xs32, *ys = pair.ys32;
  using V = typename FloatLanes<W>::type;
  using M = typename FloatLanes<W>::mask;
  const int kk = K > 0 ? K : k;
  // With Search, the samples in the column variable's tails (skip) walk in its order, after the
  // others have walked in the row variable's.
  const std::size_t tail = Search ? ksg_tail(n) : 0;
  float* y_by_x = scratch.y_by_x.data() + kKsgGuard;
  for (std::size_t p = 0; p < n; ++p) {
    const std::size_t q = pair.ypos[pair.xo[p]];
    y_by_x[p] = ys[q];
    if (Search) scratch.skip[p] = q < tail || q >= n - tail ? -1 : 0;
  }
  // k-th neighbour distances (walk_block) in blocks of W consecutive row positions, and without
  // Search n_x in each walked window. The last block starts at n - W and repeats some samples
  // (with the same results).
  V local[2 * (K > 0 ? K : 1)];
  V* right = local;
  V* left = local + (K > 0 ? K : 1);
  if (K == 0) {
    right = scratch.best<W>();
    left = right + kk;
  }
  for (std::size_t p0 = 0; p0 < n; p0 += W) {
    if (p0 % kKsgPollEvery == kKsgPollEvery - W && scratch.should_stop())
      return 0.0;  // the run's results are discarded
    const std::size_t p = std::min(p0, n - W);
    V kth, band;
    M skipped = {};
    if (Search) std::memcpy(&skipped, scratch.skip.data() + p, sizeof skipped);
    std::size_t hi, lo;
    walk_block<W, K, Search>(xs, y_by_x, p, kk, right, left, skipped, kth, band, hi, lo);
    std::memcpy(scratch.eps.data() + p, &kth, sizeof kth);
    std::memcpy(scratch.band.data() + p, &band, sizeof band);
    if (Search) continue;
    // Every sample with x gap below the band's upper end was walked.
    V xp;
    std::memcpy(&xp, xs + p, sizeof xp);
    const V lower = kth - band, upper = kth + band;
    M in = {}, below = {};
    count_side<W, 1>(xs, p, 1, hi, xp, lower, upper, in, below);
    count_side<W, -1>(xs, p, 1, lo, xp, lower, upper, in, below);
    below -= in;
    std::memcpy(scratch.nx.data() + p, &in, sizeof in);
    std::memcpy(scratch.near_x.data() + p, &below, sizeof below);
  }

  if (Search) {  // the tails' samples, walking the column variable's order (the same distances)
    float* x_by_y = scratch.x_by_y.data() + kKsgGuard;
    for (std::size_t q = 0; q < n; ++q) x_by_y[q] = xs[pair.xpos[pair.yo[q]]];
    for (const std::size_t start : {std::size_t{0}, n - tail})
      for (std::size_t q = start; q < start + tail; q += W) {
        V kth, band;
        std::size_t hi, lo;
        walk_block<W, K, false>(ys, x_by_y, q, kk, right, left, M{}, kth, band, hi, lo);
        for (int l = 0; l < W; ++l) {
          const std::size_t p = pair.xpos[pair.yo[q + std::size_t(l)]];
          scratch.eps[p] = kth[l];
          scratch.band[p] = band[l];
        }
      }
  }
#ifdef PAIRMI_AVX2_KERNELS
  if (Search)
    count_by_search_avx2(xs, n, scratch.eps.data(), scratch.band.data(), scratch.nx.data(), scratch.near_x.data());
#endif

  // n_y: in the column variable's order, each side on its own against the stored distances.
  float *eps_by_y = scratch.eps_by_y.data(), *band_by_y = scratch.band_by_y.data();
  for (std::size_t q = 0; q < n; ++q) {
    const std::size_t p = pair.xpos[pair.yo[q]];
    eps_by_y[q] = scratch.eps[p];
    band_by_y[q] = scratch.band[p];
  }
#ifdef PAIRMI_AVX2_KERNELS
  if (Search) count_by_search_avx2(ys, n, eps_by_y, band_by_y, scratch.ny.data(), scratch.near_y.data());
#endif
  for (std::size_t p0 = 0; !Search && p0 < n; p0 += W) {
    const std::size_t p = std::min(p0, n - W);
    V vp, r, band;
    std::memcpy(&vp, ys + p, sizeof vp);
    std::memcpy(&r, eps_by_y + p, sizeof r);
    std::memcpy(&band, band_by_y + p, sizeof band);
    const V lower = r - band, upper = r + band;
    M in = {}, below = {};
    count_within<W, 1>(ys, p, vp, lower, upper, in, below);
    count_within<W, -1>(ys, p, vp, lower, upper, in, below);
    below -= in;
    std::memcpy(scratch.ny.data() + p, &in, sizeof in);
    std::memcpy(scratch.near_y.data() + p, &below, sizeof below);
  }
  // Each sample's two bands hold its k-th neighbour's distance (in the variable where it is
  // attained, the same float32 gap as its eps), so the near counts add up to n exactly when they
  // hold nothing else. Then every count is exact, and the sums need no sample's other position.
  std::int64_t near = 0;  // up to 2 n^2 with many ties
  for (std::size_t p = 0; p < n; ++p) near += std::int64_t{scratch.near_x[p]} + scratch.near_y[p];
  if (near == std::int64_t(n)) {
    double part[4] = {};  // four sums: one would wait on each addition
    std::size_t p = 0;
    for (; p + 2 <= n; p += 2) {
      part[0] += psi[scratch.nx[p] + 1];
      part[1] += psi[scratch.ny[p] + 1];
      part[2] += psi[scratch.nx[p + 1] + 1];
      part[3] += psi[scratch.ny[p + 1] + 1];
    }
    if (p < n) part[0] += psi[scratch.nx[p] + 1] + psi[scratch.ny[p] + 1];
    return (part[0] + part[1]) + (part[2] + part[3]);
  }
  double total = 0.0;
  for (std::size_t p = 0; p < n; ++p) {
    const std::size_t q = pair.ypos[pair.xo[p]];
    if (scratch.near_x[p] + scratch.near_y[q] == 1)  // only the k-th neighbour: the counts are exact
      total += psi[scratch.nx[p] + 1] + psi[scratch.ny[q] + 1];
    else
      total += ksg_point_exact(pair, n, p, k, psi, scratch.exact_best.data());
  }
  return total;
}

// ksg_pair_sum with k = 3 compiled as a constant (the common case), else k as given.
template <int W, bool Search = false>
[[gnu::always_inline]] inline double ksg_pair_sum_for_k(const KsgPair& pair, std::size_t n, int k, const double* psi,
                                                        KsgScratch& scratch) {
  return k == 3 ? ksg_pair_sum<W, 3, Search>(pair, n, k, psi, scratch)
                : ksg_pair_sum<W, 0, Search>(pair, n, k, psi, scratch);
}

#ifdef PAIRMI_AVX2_KERNELS
[[gnu::target("avx2")]] inline double ksg_pair_sum_avx2(const KsgPair& pair, std::size_t n, int k, const double* psi,
                                                        KsgScratch& scratch) {
  return ksg_pair_sum_for_k<8>(pair, n, k, psi, scratch);
}
// The same, counting by search (for n >= kKsgSearchFrom).
[[gnu::target("avx2")]] inline double ksg_pair_sum_search_avx2(const KsgPair& pair, std::size_t n, int k,
                                                               const double* psi, KsgScratch& scratch) {
  return ksg_pair_sum_for_k<8, true>(pair, n, k, psi, scratch);
}
#endif

}  // namespace pairmi

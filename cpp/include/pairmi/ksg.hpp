// All-pairs Kraskov-Stoegbauer-Grassberger MI (algorithm 1), computed as scikit-learn's
// mutual_info_regression computes it for two continuous variables: each variable scaled to unit
// variance, max-norm in the joint space, eps_i = distance to the k-th neighbour, n_x(i) and n_y(i)
// = other samples strictly closer than eps_i in each marginal, and
//     MI = psi(N) + psi(k) - <psi(n_x + 1)> - <psi(n_y + 1)>   (nats), clipped at 0.
// Neighbours are found in a window around each sample in one variable's sorted order, so a pair
// costs about N * sqrt(k N) distance evaluations rather than N^2. Consecutive samples of that order
// walk together, one per vector lane, a fixed chunk of neighbours at a time: the loads are
// contiguous and the only branches are the checks between chunks.
//
// The walks run in float32, twice the lanes of float64, and the counts stay exact: each sample's
// float32 distances are within a bound e of the float64 ones, so its counts also tally the
// distances within 4e of its float32 eps (its band). In exact arithmetic one distance lies there:
// the k-th neighbour's, in the variable where its max-norm distance is attained, and that one is
// not counted (the counts are strict). A sample whose two bands hold anything else (a near tie) is
// recomputed in float64 on its own, so the results equal the float64 definition exactly.
//
// For long inputs (kKsgSearchFrom) the counts come from binary searches instead
// (count_by_search_avx2): counting windows that wide by walking them again cost more than
// searching for their ends. And the samples in the tails of the column variable walk in its order,
// not the row variable's: far from the others in it, they had the widest windows in the other
// order, and each block of eight walked as far as its widest lane.
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

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define PAIRMI_KSG_AVX2 1  // eight lanes in one register, and gathers, where the CPU has AVX2
#include <immintrin.h>
#endif

namespace pairmi {

// Neighbours offered on each side between two checks of whether the walk can stop.
constexpr std::size_t kKsgChunk = 16;
// Samples walked between two checks for Ctrl-C inside one pair (a power of two): a pair of 10^6
// samples takes seconds, a check about a millisecond's work, or 0.1 % of it.
constexpr std::size_t kKsgPollEvery = std::size_t{1} << 16;
// Guard values beyond each end of a sorted column: a walk reads up to lanes + kKsgChunk - 1
// positions past an end (eight lanes at most).
constexpr std::size_t kKsgGuard = kKsgChunk + 8;

// Each variable of `layers` stacked row-major (n, d) matrices, scaled to unit variance (population
// std, as sklearn's scale(); a constant variable keeps scale 1) and sorted once.
struct SortedColumns {
  std::size_t cols = 0, n = 0;          // cols = layers * d, indexed l * d + c
  std::vector<double> value;            // [col * n + t]: scaled value of sample t
  std::vector<double> sorted;           // srt(col)[p]: p-th smallest scaled value, -inf / +inf guards
  std::vector<float> sorted32;          // srt32(col)[p]: the same minus the column's median, float32
  std::vector<std::uint32_t> order;     // [col * n + p]: sample at sorted position p
  std::vector<std::uint32_t> position;  // [col * n + t]: sorted position of sample t
  std::vector<std::uint8_t> constant;   // [col]: all values equal

  std::size_t stride() const { return n + 2 * kKsgGuard; }
  const double* val(std::size_t c) const { return &value[c * n]; }
  const double* srt(std::size_t c) const { return &sorted[c * stride() + kKsgGuard]; }
  const float* srt32(std::size_t c) const { return &sorted32[c * stride() + kKsgGuard]; }
  const std::uint32_t* ord(std::size_t c) const { return &order[c * n]; }
  const std::uint32_t* pos(std::size_t c) const { return &position[c * n]; }
};

// Band half-width around the float32 eps of a sample whose centred float32 values reach a (the
// larger of its two), per unit of a + eps: 4e, where e bounds |float32 - float64| of its distances
// d <= eps + band. The float64 centring and subtraction err by 2^-53 of |value| and of d, the float32
// conversions and subtraction by 2^-24 of them: together at most 2^-23 (a + d). e here is twice
// that, which also covers rounding the band and its ends in float32. Values below float32's normal
// range (|value| < 2^-126) lose up to 2^-150 each instead: the floor covers those.
constexpr float kBandPerValue = 0x1p-21f;
constexpr float kBandFloor = 0x1p-146f;

// Population standard deviation of v[0..n). Squares of deviations beyond about 1e154 overflow and
// below about 1e-154 lose their digits in float64: such columns are summed relative to their
// largest magnitude instead (other columns keep the plain sums, so their results do not change).
inline double population_sd(const double* v, std::size_t n) {
  double mean = 0.0, var = 0.0;
  for (std::size_t t = 0; t < n; ++t) mean += v[t];
  mean /= double(n);
  for (std::size_t t = 0; t < n; ++t) var += (v[t] - mean) * (v[t] - mean);
  const double sd = std::sqrt(var / double(n));
  if (std::isfinite(sd) && sd > 1e-140) return sd;
  const auto [lo, hi] = std::minmax_element(v, v + n);
  if (*lo == *hi) return 0.0;  // constant
  const double big = std::max(std::abs(*lo), std::abs(*hi));
  double m = 0.0, s2 = 0.0;
  for (std::size_t t = 0; t < n; ++t) m += v[t] / big;
  m /= double(n);
  for (std::size_t t = 0; t < n; ++t) s2 += (v[t] / big - m) * (v[t] / big - m);
  return big * std::sqrt(s2 / double(n));
}

template <class T>
SortedColumns sort_columns(const T* x, std::size_t layers, std::size_t n, std::size_t d, int threads = 1) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  SortedColumns s;
  s.cols = layers * d;
  s.n = n;
  s.value.resize(s.cols * n);
  s.sorted.resize(s.cols * s.stride());
  s.sorted32.resize(s.cols * s.stride());
  s.order.resize(s.cols * n);
  s.position.resize(s.cols * n);
  s.constant.resize(s.cols);
#pragma omp parallel for schedule(dynamic, 16) num_threads(std::max(1, threads))
  for (long col = 0; col < static_cast<long>(s.cols); ++col) {
    const std::size_t c = std::size_t(col), l = c / d, k = c % d;
    double* v = &s.value[c * n];
    for (std::size_t t = 0; t < n; ++t) v[t] = static_cast<double>(x[(l * n + t) * d + k]);
    const double sd = population_sd(v, n);
    if (sd > 0)
      for (std::size_t t = 0; t < n; ++t) v[t] /= sd;
    std::uint32_t* o = &s.order[c * n];
    std::iota(o, o + n, std::uint32_t{0});
    std::stable_sort(o, o + n, [v](std::uint32_t a, std::uint32_t b) { return v[a] < v[b]; });
    double* sorted = &s.sorted[c * s.stride()];
    float* sorted32 = &s.sorted32[c * s.stride()];
    std::fill(sorted, sorted + kKsgGuard, -inf);
    std::fill(sorted + kKsgGuard + n, sorted + s.stride(), inf);
    std::fill(sorted32, sorted32 + kKsgGuard, -float(inf));
    std::fill(sorted32 + kKsgGuard + n, sorted32 + s.stride(), float(inf));
    for (std::size_t p = 0; p < n; ++p) {
      sorted[kKsgGuard + p] = v[o[p]];
      s.position[c * n + o[p]] = static_cast<std::uint32_t>(p);
    }
    // Centred on the median: the bulk of the values, and so of the float32 errors, stays small.
    // (Unit variance keeps the values far inside float32's range.)
    const double mid = sorted[kKsgGuard + n / 2];
    // + 0.0f turns -0 into +0: the walks order distances by their bit patterns (kIntegerOrder), and
    // (-0) - (+0) would be a distance of -0, below every other.
    for (std::size_t p = 0; p < n; ++p)
      sorted32[kKsgGuard + p] = static_cast<float>(sorted[kKsgGuard + p] - mid) + 0.0f;
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

// W float32 lanes handled at once, and the comparison masks (a dependent vector_size is not
// applied in templates, hence one per W). Four lanes are one SSE2 or NEON register.
template <int W>
struct FloatLanes;
template <>
struct FloatLanes<4> {
  using type = float __attribute__((vector_size(16)));
  using mask = std::int32_t __attribute__((vector_size(16)));
};
template <>
struct FloatLanes<8> {
  using type = float __attribute__((vector_size(32)));
  using mask = std::int32_t __attribute__((vector_size(32)));
};

// The walks' distances and bounds are compared through these. Distances are >= +0 (sorted32
// holds no -0, and |dy| has its sign bit cleared), and such floats order as their bit patterns do
// as int32; a negative bound (eps - band) orders below them either way. With eight lanes (AVX2)
// the comparisons, minima and maxima run on those integers: integer vector instructions issue on
// more of the CPU's ports than float ones, and the walks were bound by them (per pair at 90
// samples, one thread: -11 % on Zen 4). SSE2 has no int32 minimum or maximum: four lanes keep
// float instructions. Helpers taking vectors are always inlined, so that they are compiled for the
// instruction set of the kernel that calls them (and take no vector by value: that would change
// the ABI between instruction sets).
template <int W>
constexpr bool kIntegerOrder = W == 8;

// below = -1 in the lanes where a < b, else 0.
template <int W>
[[gnu::always_inline]] inline void lanes_below(const typename FloatLanes<W>::type& a,
                                               const typename FloatLanes<W>::type& b,
                                               typename FloatLanes<W>::mask& below) {
  using M = typename FloatLanes<W>::mask;
  if constexpr (kIntegerOrder<W>)
    below = (M)a < (M)b;
  else
    below = (M)(a < b);
}

// out = min(a, b) (Min) or max(a, b) lane by lane; out may be a or b.
template <int W, bool Min>
[[gnu::always_inline]] inline void lanes_extreme(const typename FloatLanes<W>::type& a,
                                                 const typename FloatLanes<W>::type& b,
                                                 typename FloatLanes<W>::type& out) {
  using V = typename FloatLanes<W>::type;
  using M = typename FloatLanes<W>::mask;
  if constexpr (kIntegerOrder<W> && Min)
    out = (V)((M)a < (M)b ? (M)a : (M)b);
  else if constexpr (kIntegerOrder<W>)
    out = (V)((M)a > (M)b ? (M)a : (M)b);
  else if constexpr (Min)
    out = a < b ? a : b;
  else
    out = a > b ? a : b;
}

// Whether a < b in any lane.
template <int W>
[[gnu::always_inline]] inline bool any_below(const typename FloatLanes<W>::type& a,
                                             const typename FloatLanes<W>::type& b) {
  // The mask's 16-byte halves ORed, then its two 8-byte words: fewer extractions than lane by lane.
  typename FloatLanes<W>::mask below;
  lanes_below<W>(a, b, below);
  typename FloatLanes<4>::mask half, folded = {};
  for (int h = 0; h < W / 4; ++h) {
    std::memcpy(&half, reinterpret_cast<const char*>(&below) + 16 * h, sizeof half);
    folded |= half;
  }
  std::uint64_t words[2];
  std::memcpy(words, &folded, sizeof words);
  return (words[0] | words[1]) != 0;
}

// Inserts distances d into each lane's ascending k best, without branches (whether a distance
// enters is unpredictable): best[m] becomes min(best[m], max(best[m-1], d)).
template <int W, int K>
[[gnu::always_inline]] inline void offer(typename FloatLanes<W>::type* best, int k,
                                         const typename FloatLanes<W>::type& d) {
  for (int m = (K > 0 ? K : k) - 1; m > 0; --m) {
    typename FloatLanes<W>::type up;
    lanes_extreme<W, false>(best[m - 1], d, up);
    lanes_extreme<W, true>(best[m], up, best[m]);
  }
  lanes_extreme<W, true>(best[0], d, best[0]);
}

// gap = the distance from W samples at xp to the W samples `offset` positions to the right
// (Dir = 1) or left (Dir = -1) of position p in the sorted values v.
template <int W, int Dir>
[[gnu::always_inline]] inline void side_gap(const float* v, std::size_t p, std::size_t offset,
                                            const typename FloatLanes<W>::type& vp, typename FloatLanes<W>::type& gap) {
  typename FloatLanes<W>::type q;
  std::memcpy(&q, v + p + std::ptrdiff_t(offset) * Dir, sizeof q);
  gap = Dir > 0 ? q - vp : vp - q;  // >= 0: v is sorted
}

// Offers each lane's k best of one side the neighbours at offsets o..end - 1 (o ends at end).
template <int W, int K, int Dir>
[[gnu::always_inline]] inline void offer_side(const float* xs, const float* y_by_x, std::size_t p, std::size_t& o,
                                              std::size_t end, const typename FloatLanes<W>::type& xp,
                                              const typename FloatLanes<W>::type& yp,
                                              typename FloatLanes<W>::type* best, int k) {
  using V = typename FloatLanes<W>::type;
  using M = typename FloatLanes<W>::mask;
  for (; o < end; ++o) {
    V gap, yq;
    side_gap<W, Dir>(xs, p, o, xp, gap);
    std::memcpy(&yq, y_by_x + p + std::ptrdiff_t(o) * Dir, sizeof yq);
    const V dy = (V)((M)(yq - yp) & (M{} + 0x7fffffff));  // |dy|: the sign bit cleared
    // The float maximum: on integers it was 8 % slower (its inputs come from float subtractions).
    offer<W, K>(best, k, gap > dy ? gap : dy);
  }
}

// Each lane's tallies of the neighbours at offsets o..end - 1 of one side: `in` those closer than
// lower, `below` those closer than upper.
template <int W, int Dir>
[[gnu::always_inline]] inline void count_side(const float* v, std::size_t p, std::size_t o, std::size_t end,
                                              const typename FloatLanes<W>::type& vp,
                                              const typename FloatLanes<W>::type& lower,
                                              const typename FloatLanes<W>::type& upper,
                                              typename FloatLanes<W>::mask& in, typename FloatLanes<W>::mask& below) {
  using M = typename FloatLanes<W>::mask;
  for (; o < end; ++o) {
    typename FloatLanes<W>::type gap;
    side_gap<W, Dir>(v, p, o, vp, gap);
    M closer;  // true is -1
    lanes_below<W>(gap, lower, closer);
    in -= closer;
    lanes_below<W>(gap, upper, closer);
    below -= closer;
  }
}

// count_side over one whole side: chunks of kKsgChunk offsets until every lane's next gap reaches upper.
template <int W, int Dir>
[[gnu::always_inline]] inline void count_within(const float* v, std::size_t p, const typename FloatLanes<W>::type& vp,
                                                const typename FloatLanes<W>::type& lower,
                                                const typename FloatLanes<W>::type& upper,
                                                typename FloatLanes<W>::mask& in, typename FloatLanes<W>::mask& below) {
  typename FloatLanes<W>::type gap;
  std::size_t o = 1;
  do {
    count_side<W, Dir>(v, p, o, o + kKsgChunk, vp, lower, upper, in, below);
    o += kKsgChunk;
    side_gap<W, Dir>(v, p, o, vp, gap);
  } while (any_below<W>(gap, upper));
}

#ifdef PAIRMI_KSG_AVX2
// From this many samples on, with AVX2, the kernel runs with Search (ksg_pair_sum): the marginal
// counts come from count_by_search_avx2 rather than from walks (a count walk costs about its
// window, a search about log2(n) gathers per side), and the samples in the column variable's tails
// walk in its order. Per pair, one thread, against walks throughout: at 384 samples 2 % faster on
// normal data and 24 % on Student-t; at 256, 10 % slower on normal data.
constexpr std::size_t kKsgSearchFrom = 384;

// The gaps from the samples at positions `at` (values vp) of the sorted values v to those `offset`
// further right (or left), through a gather.
[[gnu::target("avx2")]] [[gnu::always_inline]] inline __m256 gathered_gap(const float* v, __m256i at, __m256 vp,
                                                                          __m256i offset, bool right) {
  const __m256i pos = right ? _mm256_add_epi32(at, offset) : _mm256_sub_epi32(at, offset);
  const __m256 q = _mm256_i32gather_ps(v, pos, 4);
  return right ? _mm256_sub_ps(q, vp) : _mm256_sub_ps(vp, q);
}

// The tallies of the walks' counts for every sample, by binary search instead. For the sample at
// each position p of the n sorted float32 values v (guarded), with distance eps[p] and band
// band[p]: in[p] = the others closer than eps - band, near[p] = those closer than eps + band but
// not eps - band. The gaps grow away from a sample (float32 subtraction is monotone), so the
// closer ones are a prefix of the offsets on each side: a binary search finds where it ends for
// eps - band, then a step at a time for eps + band (the band holds few). Eight samples search at
// once; three blocks of them and both sides interleave, so the gathers' latency overlaps.
[[gnu::target("avx2")]] inline void count_by_search_avx2(const float* v, std::size_t n, const float* eps,
                                                         const float* band, std::int32_t* in, std::int32_t* near) {
  constexpr int kBlocks = 3, kChains = 2 * kBlocks;  // chain 2b searches block b's right side, 2b + 1 its left
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), one = _mm256_set1_epi32(1);
  const std::size_t top_step = std::size_t{1} << (63 - __builtin_clzll(n));  // the steps add up to >= n
  for (std::size_t b0 = 0; b0 < n; b0 += 8 * kBlocks) {
    std::size_t p[kBlocks];  // a block past the end repeats the last eight samples
    for (int b = 0; b < kBlocks; ++b) p[b] = std::min(b0 + 8 * std::size_t(b), n - 8);
    __m256i at[kChains], guard[kChains], base[kChains], top[kChains];
    __m256 vp[kChains], lower[kChains], upper[kChains];
    for (int c = 0; c < kChains; ++c) {
      at[c] = _mm256_add_epi32(_mm256_set1_epi32(std::int32_t(p[c / 2])), lane);
      // The offset of the guard just past the end of this side: its gap is infinite.
      guard[c] =
          c % 2 == 0 ? _mm256_sub_epi32(_mm256_set1_epi32(std::int32_t(n)), at[c]) : _mm256_add_epi32(at[c], one);
      vp[c] = _mm256_loadu_ps(v + p[c / 2]);
      const __m256 r = _mm256_loadu_ps(eps + p[c / 2]), w = _mm256_loadu_ps(band + p[c / 2]);
      lower[c] = _mm256_sub_ps(r, w);  // as the walks compute them
      upper[c] = _mm256_add_ps(r, w);
      base[c] = _mm256_setzero_si256();
    }
    for (std::size_t step = top_step; step > 0; step >>= 1)  // offsets 1..base: below lower
      for (int c = 0; c < kChains; ++c) {
        const __m256i step_v = _mm256_set1_epi32(std::int32_t(step));
        const __m256i cand = _mm256_min_epi32(_mm256_add_epi32(base[c], step_v), guard[c]);
        const __m256 take = _mm256_cmp_ps(gathered_gap(v, at[c], vp[c], cand, c % 2 == 0), lower[c], _CMP_LT_OQ);
        base[c] = _mm256_blendv_epi8(base[c], cand, _mm256_castps_si256(take));
      }
    for (int c = 0; c < kChains; ++c) top[c] = base[c];
    // Offsets 1..top: below upper, a step at a time. (A guard's gap is infinite, so top stops
    // before it; the bound on steps only makes termination plain.)
    bool more = true;
    for (std::size_t o = 0; more && o < n; ++o) {
      more = false;
      for (int c = 0; c < kChains; ++c) {
        const __m256i cand = _mm256_min_epi32(_mm256_add_epi32(top[c], one), guard[c]);
        const __m256 take = _mm256_cmp_ps(gathered_gap(v, at[c], vp[c], cand, c % 2 == 0), upper[c], _CMP_LT_OQ);
        more |= _mm256_movemask_ps(take) != 0;
        top[c] = _mm256_blendv_epi8(top[c], cand, _mm256_castps_si256(take));
      }
    }
    for (int b = 0; b < kBlocks; ++b) {
      const __m256i count = _mm256_add_epi32(base[2 * b], base[2 * b + 1]);
      const __m256i below = _mm256_add_epi32(top[2 * b], top[2 * b + 1]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(in + p[b]), count);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(near + p[b]), _mm256_sub_epi32(below, count));
    }
  }
}
#endif

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
#ifdef PAIRMI_KSG_AVX2
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
#ifdef PAIRMI_KSG_AVX2
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

#ifdef PAIRMI_KSG_AVX2
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

// Lanes the KSG kernel runs: 8 where the CPU has AVX2 (chosen at run time: wheels stay baseline
// x86-64), else 4.
inline int ksg_widest_lanes() {
#ifdef PAIRMI_KSG_AVX2
  if (__builtin_cpu_supports("avx2")) return 8;
#endif
  return 4;
}

// Pairs per tile side (scheduling and progress granularity; pairs are computed one by one).
inline std::size_t ksg_tile_side(std::size_t n) { return n <= 2048 ? 16 : n <= 8192 ? 8 : 4; }

// Bytes of scratch one thread's KSG worker allocates.
inline std::size_t ksg_worker_bytes(std::size_t n, int k) {
  return sizeof(float) * (11 * n + 4 * kKsgGuard) + (8 + 64) * std::size_t(k) + 32;
}

// One thread's KSG worker: each pair of a tile on its own (x's variables as rows).
template <class Out>
class KsgTileWorker {
 public:
  KsgTileWorker(const SortedColumns& x, const SortedColumns& y, std::size_t d_x, std::size_t d_y, int k,
                const std::vector<double>& psi, const PairWriter<Out>& write, int lanes, const StopCheck& stop = {})
      : x_(x),
        y_(y),
        dx_(d_x),
        dy_(d_y),
        k_(k),
        psi_(psi),
        write_(write),
        lanes_(x.n >= 8 && lanes == 8 ? 8 : 4),
        scratch_(x.n, k) {
    scratch_.should_stop = stop;
  }

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
    const KsgPair pair = ksg_pair(x_, a, y_, b);
    // Too few samples for a lane block: all in float64.
    if (x_.n < std::size_t(lanes_)) return ksg_pair_sum_exact(pair, x_.n, k_, psi_.data(), scratch_);
#ifdef PAIRMI_KSG_AVX2
    if (lanes_ == 8 && x_.n >= kKsgSearchFrom) return ksg_pair_sum_search_avx2(pair, x_.n, k_, psi_.data(), scratch_);
    if (lanes_ == 8) return ksg_pair_sum_avx2(pair, x_.n, k_, psi_.data(), scratch_);
#endif
    return ksg_pair_sum_for_k<4>(pair, x_.n, k_, psi_.data(), scratch_);
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
// lanes: 4, or 0 for the widest the CPU runs (ksg_widest_lanes); the results are the same.
template <class Out>
bool ksg_mi(const SortedColumns& x, const SortedColumns* y, std::size_t layers, int k, double scale, Out* out,
            int threads = 1, const TileMonitor& monitor = {}, int lanes = 0) {
  if (layers == 0) return true;  // nothing to compute (and no variables per layer to divide by)
  const bool upper = (y == nullptr);
  const SortedColumns& yy = upper ? x : *y;
  const std::size_t dx = x.cols / layers, dy = yy.cols / layers;
  const auto tiles = make_tiles(layers, dx, dy, upper, ksg_tile_side(x.n));
  const auto psi = digamma_table(x.n);
  const PairWriter<Out> write{out, dx, dy, upper, scale};
  const int w = lanes == 4 ? 4 : ksg_widest_lanes();
  return for_each_tile(tiles, threads, monitor, [&](const StopCheck& stop) {
    return KsgTileWorker<Out>(x, yy, dx, dy, k, psi, write, w, stop);
  });
}

}  // namespace pairmi

// KSG's vector steps on W float32 lanes: comparisons, the k best distances, walking one side in
// chunks, and (AVX2) the marginal counts by binary search.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pairmi/ksg_columns.hpp"
#include "pairmi/simd.hpp"

namespace pairmi {

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

#ifdef PAIRMI_AVX2_KERNELS
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

}  // namespace pairmi

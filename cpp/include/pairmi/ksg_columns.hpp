// KSG's inputs: each variable scaled to unit variance and sorted once (float64, and float32 centred
// on its median, for the walks), with guard values beyond each end; and the digamma table.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace pairmi {

// Neighbours offered on each side between two checks of whether the walk can stop.
constexpr std::size_t kKsgChunk = 16;
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

  // Bytes sort_columns allocates for `cols` columns of n samples, for a caller's memory check.
  static std::size_t bytes(std::size_t cols, std::size_t n) {
    const std::size_t guarded = n + 2 * kKsgGuard;
    return cols * (n * (sizeof(double) + 2 * sizeof(std::uint32_t)) + guarded * (sizeof(double) + sizeof(float)) + 1);
  }

  std::size_t stride() const { return n + 2 * kKsgGuard; }
  const double* val(std::size_t c) const { return &value[c * n]; }
  const double* srt(std::size_t c) const { return &sorted[c * stride() + kKsgGuard]; }
  const float* srt32(std::size_t c) const { return &sorted32[c * stride() + kKsgGuard]; }
  const std::uint32_t* ord(std::size_t c) const { return &order[c * n]; }
  const std::uint32_t* pos(std::size_t c) const { return &position[c * n]; }
};

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

}  // namespace pairmi

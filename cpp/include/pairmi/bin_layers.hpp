// Binning of stacked layers of samples x variables matrices: every column's edges, then its codes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pairmi/binning.hpp"

namespace pairmi {

// Equal-width edges (as np.histogram2d builds them) of every column of `layers` stacked row-major
// (n, d) matrices: edges[(l * d + c) * (bins + 1) + k].
template <class T>
void equal_width_layer_edges(const T* x, std::size_t layers, std::size_t n, std::size_t d, int bins, double* edges,
                             int threads = 1) {
#pragma omp parallel for schedule(static) num_threads(std::max(1, threads))
  for (long l = 0; l < static_cast<long>(layers); ++l) {
    std::vector<double> lo(d), hi(d);
    column_min_max(x + std::size_t(l) * n * d, n, d, d, lo.data(), hi.data());
    for (std::size_t c = 0; c < d; ++c)
      equal_width_edges(lo[c], hi[c], bins, edges + (std::size_t(l) * d + c) * (bins + 1));
  }
  (void)threads;
}

// Equal-frequency edges (as np.percentile builds them, see equal_frequency_edges) of every column of
// `layers` stacked row-major (n, d) matrices: edges[(l * d + c) * (bins + 1) + k].
template <class T>
void equal_frequency_layer_edges(const T* x, std::size_t layers, std::size_t n, std::size_t d, int bins, double* edges,
                                 int threads = 1) {
  constexpr std::size_t kCols = 16;  // columns gathered per pass over the rows
  const std::size_t blocks = (d + kCols - 1) / kCols;
  const auto pos = equal_frequency_positions(n, bins);
  // Selecting only the positions read beats a full sort from about this many samples per position
  // (timed on one thread with 15 bins at 90 and 4096 samples; docs/benchmarks.md).
  constexpr std::size_t kSelectFromSamplesPerPosition = 32;
  const bool select = n > kSelectFromSamplesPerPosition * pos.size();
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<double> v(kCols * n);
#pragma omp for schedule(dynamic, 1)
    for (long b = 0; b < static_cast<long>(layers * blocks); ++b) {
      const std::size_t l = std::size_t(b) / blocks, c0 = std::size_t(b) % blocks * kCols;
      const std::size_t nc = std::min(kCols, d - c0);
      const T* xl = x + l * n * d + c0;
      for (std::size_t t = 0; t < n; ++t)
        for (std::size_t c = 0; c < nc; ++c) v[c * n + t] = static_cast<double>(xl[t * d + c]);
      for (std::size_t c = 0; c < nc; ++c) {
        if (select)
          select_positions(&v[c * n], 0, n, pos.data(), pos.size());
        else
          std::sort(&v[c * n], &v[c * n] + n);
        equal_frequency_edges(&v[c * n], n, bins, edges + (l * d + c0 + c) * (bins + 1));
      }
    }
  }
  (void)threads;
}

// Codes (layers, d, n) of every column of `layers` stacked row-major (n, d) matrices, given edges.
template <class T>
void bin_layers(const T* x, std::size_t layers, std::size_t n, std::size_t d, const double* edges, int bins,
                std::uint8_t* codes, int threads = 1) {
  constexpr std::size_t kCols = 64;  // columns per parallel task
  const std::size_t blocks = (d + kCols - 1) / kCols;
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::max(1, threads))
  for (long b = 0; b < static_cast<long>(layers * blocks); ++b) {
    const std::size_t l = std::size_t(b) / blocks, c0 = std::size_t(b) % blocks * kCols;
    const std::size_t nc = std::min(kCols, d - c0);
    bin_columns(x + l * n * d + c0, n, nc, d, edges + (l * d + c0) * (bins + 1), bins, codes + (l * d + c0) * n);
  }
  (void)threads;
}

}  // namespace pairmi

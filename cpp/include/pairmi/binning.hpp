// Binning pass: turns each column of a samples x variables matrix into small integer bin codes,
// assigned exactly as np.histogram2d assigns them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace pairmi {

constexpr int kMaxBins = 255;  // codes are uint8

// Edges of np.linspace(lo, hi, bins + 1), the edges np.histogram2d(x, y, bins) uses: a constant
// column gets numpy's [x - 0.5, x + 0.5] range. Same operations, same rounding, as numpy.
inline void equal_width_edges(double lo, double hi, int bins, double* edges) {
  if (lo == hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const double delta = hi - lo;
  const double step = delta / bins;
  for (int k = 0; k < bins; ++k) edges[k] = (step == 0 ? (double(k) / bins) * delta : double(k) * step) + lo;
  edges[bins] = hi;
}

// Virtual index of np.percentile's k-th edge of np.linspace(0, 100, bins + 1) among n values
// (numpy's default 'linear' method, numpy >= 1.22): same operations, same rounding.
inline double percentile_index(std::size_t n, int bins, int k) {
  const double q = (k == bins ? 100.0 : double(k) * (100.0 / bins)) / 100.0;
  return double(n - 1) * q;
}

// Sorted positions that equal_frequency_edges reads, ascending and distinct.
inline std::vector<std::size_t> equal_frequency_positions(std::size_t n, int bins) {
  std::vector<std::size_t> pos;
  for (int k = 0; k <= bins; ++k) {
    const double v = percentile_index(n, bins, k);
    if (v >= double(n - 1)) {
      pos.push_back(n - 1);
    } else {
      pos.push_back(std::size_t(std::floor(v)));
      pos.push_back(std::size_t(std::floor(v)) + 1);
    }
  }
  std::sort(pos.begin(), pos.end());
  pos.erase(std::unique(pos.begin(), pos.end()), pos.end());
  return pos;
}

// Puts at each of the ascending positions pos[0..m) of v[lo, hi) the value a full sort would put
// there: one selection, then each side for its positions (O(n log m) rather than O(n log n)).
inline void select_positions(double* v, std::size_t lo, std::size_t hi, const std::size_t* pos, std::size_t m) {
  if (m == 0) return;
  const std::size_t mid = m / 2, p = pos[mid];
  std::nth_element(v + lo, v + p, v + hi);
  select_positions(v, lo, p, pos, mid);
  select_positions(v, p + 1, hi, pos + mid + 1, m - mid - 1);
}

// Edges of np.percentile(v, np.linspace(0, 100, bins + 1)) for the n >= 1 values of a column whose
// equal_frequency_positions(n, bins) hold the sorted values there: numpy's default 'linear' method
// (numpy >= 1.22), same operations, same rounding.
inline void equal_frequency_edges(const double* sorted, std::size_t n, int bins, double* edges) {
  for (int k = 0; k <= bins; ++k) {
    const double v = percentile_index(n, bins, k);
    if (v >= double(n - 1)) {
      edges[k] = sorted[n - 1];
      continue;
    }
    const double below = std::floor(v), t = v - below;
    const double a = sorted[std::size_t(below)], b = sorted[std::size_t(below) + 1], diff = b - a;
    edges[k] = t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
  }
}

// Minimum and maximum of every column of the row-major (n, d) matrix x (row stride ld).
template <class T>
void column_min_max(const T* x, std::size_t n, std::size_t d, std::size_t ld, double* lo, double* hi) {
  std::fill(lo, lo + d, std::numeric_limits<double>::infinity());
  std::fill(hi, hi + d, -std::numeric_limits<double>::infinity());
  for (std::size_t t = 0; t < n; ++t) {
    const T* row = x + t * ld;
    for (std::size_t c = 0; c < d; ++c) {
      const double v = static_cast<double>(row[c]);
      lo[c] = std::min(lo[c], v);
      hi[c] = std::max(hi[c], v);
    }
  }
}

// Bin codes of one column given its bins + 1 sorted edges, which span the column's values.
// np.histogram2d's code is searchsorted(edges, v, side='right') - 1 with the last edge closing the
// last bin, which equals the number of inner edges edges[1..bins-1] that are <= v; repeated edges
// (ties) give empty bins, as in numpy. Equal-width edges: a guess from (v - lo) / width, corrected
// by walking the edges (exact for any sorted edges; rounding puts the guess at most one bin off).
// Other edges: every inner edge compared, branch-free and vectorised over samples. A value below the
// first edge (fixed edges meet later data) takes the first edge's bin, as one above the last takes
// the last bin: with tied lowest edges (equal-frequency edges of ReLU zeros) that is the bin holding
// the minimum's values, not the zero-width bin before it.
inline void codes_from_edges(const double* v, std::size_t n, const double* edges, int bins, std::uint8_t* codes) {
  double uniform[kMaxBins + 1];
  equal_width_edges(edges[0], edges[bins], bins, uniform);
  if (std::equal(uniform, uniform + bins + 1, edges)) {
    const double lo = edges[0], per_width = bins / (edges[bins] - edges[0]), last = bins - 1;
    for (std::size_t t = 0; t < n; ++t) {
      const double guess = (v[t] - lo) * per_width;
      int k = guess >= 1.0 ? int(std::min(guess, last)) : 0;
      while (k > 0 && v[t] < edges[k]) --k;
      while (k < bins - 1 && v[t] >= edges[k + 1]) ++k;
      codes[t] = static_cast<std::uint8_t>(k);
    }
    return;
  }
  // Inner edges equal to the first are at or below every value once values are raised to it.
  int first = 1;
  while (first < bins && edges[first] <= edges[0]) ++first;
  std::fill(codes, codes + n, static_cast<std::uint8_t>(first - 1));
  for (int k = first; k < bins; ++k) {
    const double e = edges[k];
    for (std::size_t t = 0; t < n; ++t) codes[t] += static_cast<std::uint8_t>(v[t] >= e);
  }
}

// Codes of every column of the row-major (n, d) matrix x; edges holds bins + 1 edges per column.
// codes is column-major (d, n): column c's codes are contiguous at codes + c * n, the layout the
// joint-histogram kernel streams. Columns are gathered in blocks so each row is read once per block.
template <class T>
void bin_columns(const T* x, std::size_t n, std::size_t d, std::size_t ld, const double* edges, int bins,
                 std::uint8_t* codes) {
  constexpr std::size_t kBlockCols = 8, kBlockRows = 1024;
  std::vector<double> buf(kBlockCols * kBlockRows);
  for (std::size_t c0 = 0; c0 < d; c0 += kBlockCols) {
    const std::size_t nc = std::min(kBlockCols, d - c0);
    for (std::size_t t0 = 0; t0 < n; t0 += kBlockRows) {
      const std::size_t nt = std::min(kBlockRows, n - t0);
      for (std::size_t t = 0; t < nt; ++t)
        for (std::size_t c = 0; c < nc; ++c) buf[c * kBlockRows + t] = static_cast<double>(x[(t0 + t) * ld + c0 + c]);
      for (std::size_t c = 0; c < nc; ++c)
        codes_from_edges(&buf[c * kBlockRows], nt, edges + (c0 + c) * (bins + 1), bins, codes + (c0 + c) * n + t0);
    }
  }
}

}  // namespace pairmi

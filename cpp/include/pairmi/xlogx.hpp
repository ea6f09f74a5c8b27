// Plug-in entropy from integer counts through a table of c*ln(c): no log is taken per cell.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pairmi {

// f[c] = c * ln(c) for c = 0..n, with f[0] = 0. For counts summing to n over the cells of a
// histogram, the plug-in entropy is H = ln(n) - sum(f[c]) / n nats. steps()[c] = f[c+1] - f[c]:
// what one more sample in a cell holding c adds to that sum, so it can be summed while counting.
class XLogXTable {
 public:
  explicit XLogXTable(std::size_t n) : n_(n), f_(n + 1, 0.0), step_(n, 0.0) {
    for (std::size_t c = 2; c <= n; ++c) f_[c] = double(c) * std::log(double(c));
    for (std::size_t c = 0; c < n; ++c) step_[c] = f_[c + 1] - f_[c];
  }
  const double* data() const { return f_.data(); }
  const double* steps() const { return step_.data(); }
  std::size_t n() const { return n_; }
  double entropy(double sum_xlogx) const { return std::log(double(n_)) - sum_xlogx / double(n_); }

 private:
  std::size_t n_;
  std::vector<double> f_, step_;
};

// Histogram cells are stored in whole 8-byte words so they can be scanned a word at a time.
template <class Count>
constexpr std::size_t padded_cells(std::size_t cells) {
  constexpr std::size_t lanes = 8 / sizeof(Count);
  return (cells + lanes - 1) / lanes * lanes;
}

// Sum of f[c] over the cells of h (padded_cells(cells) long), then zero h. Cells with a count of 0
// or 1 add nothing (f[0] = f[1] = 0), so each 8-byte word is tested for a lane >= 2 at once and
// only those lanes are looked up: at 90 samples in 225 cells most words are skipped.
template <class Count>
double sum_xlogx_and_clear(Count* h, std::size_t cells, const double* f) {
  constexpr unsigned bits = 8 * sizeof(Count);
  constexpr std::size_t lanes = 8 / sizeof(Count);
  constexpr std::uint64_t lane_mask = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
  constexpr std::uint64_t low_bits = ~std::uint64_t{0} / lane_mask;  // bit 0 of every lane
  const std::size_t padded = padded_cells<Count>(cells);
  double s = 0.0;
  for (std::size_t w = 0; w < padded; w += lanes) {
    std::uint64_t word;
    std::memcpy(&word, h + w, 8);
    std::uint64_t above_one = word & ~low_bits;
    while (above_one) {
      const unsigned lane = static_cast<unsigned>(__builtin_ctzll(above_one)) / bits;
      s += f[(word >> (lane * bits)) & lane_mask];
      above_one &= ~(lane_mask << (lane * bits));
    }
  }
  std::memset(h, 0, padded * sizeof(Count));
  return s;
}

// Entropy (nats) of one column of codes in [0, bins).
inline double column_entropy(const std::uint8_t* codes, std::size_t n, int bins, const XLogXTable& f,
                             std::vector<std::uint32_t>& hist) {
  hist.assign(padded_cells<std::uint32_t>(static_cast<std::size_t>(bins)), 0);
  for (std::size_t t = 0; t < n; ++t) ++hist[codes[t]];
  return f.entropy(sum_xlogx_and_clear(hist.data(), static_cast<std::size_t>(bins), f.data()));
}

}  // namespace pairmi

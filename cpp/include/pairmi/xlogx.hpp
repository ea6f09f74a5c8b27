// Plug-in entropy from integer counts through a table of c*ln(c): no log is taken per cell.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pairmi {

// f[c] = c * ln(c) for c = 0..n, with f[0] = 0. For counts summing to n over the cells of a
// histogram, the plug-in entropy is H = ln(n) - sum(f[c]) / n nats. steps()[c] = f[c+1] - f[c]:
// what one more sample in a cell holding c adds to that sum, so it can be summed while counting.
//
// With Miller-Madow, H_MM = H + (m - 1) / (2n) for m non-empty cells. Folding -1/2 into f[c] for
// c > 0 makes the same sums give sum(f) - m/2, so the correction costs nothing in the kernel.
class XLogXTable {
 public:
  XLogXTable(std::size_t n, bool miller_madow = false)
      : n_(n),
        log_n_(std::log(double(n))),
        offset_(miller_madow ? 0.5 / double(n) : 0.0),
        f_(n + 1, 0.0),
        step_(n, 0.0) {
    for (std::size_t c = 1; c <= n; ++c) f_[c] = double(c) * std::log(double(c)) - (miller_madow ? 0.5 : 0.0);
    for (std::size_t c = 0; c < n; ++c) step_[c] = f_[c + 1] - f_[c];
  }
  const double* data() const { return f_.data(); }
  const double* steps() const { return step_.data(); }
  std::size_t n() const { return n_; }
  // Entropies are >= 0 exactly (with or without the correction): clamping removes only rounding.
  double entropy(double sum_f) const { return std::max(0.0, log_n_ - sum_f / double(n_) - offset_); }

 private:
  std::size_t n_;
  double log_n_, offset_;
  std::vector<double> f_, step_;
};

// Entropy (nats) of one column of codes in [0, bins); hist is scratch.
inline double column_entropy(const std::uint8_t* codes, std::size_t n, int bins, const XLogXTable& f,
                             std::vector<std::uint32_t>& hist) {
  hist.assign(static_cast<std::size_t>(bins), 0);
  for (std::size_t t = 0; t < n; ++t) ++hist[codes[t]];
  double s = 0.0;
  for (const std::uint32_t c : hist) s += f.data()[c];
  return f.entropy(s);
}

}  // namespace pairmi

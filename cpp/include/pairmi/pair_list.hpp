// Joint bin counts of a list of pairs (i, j) of variables, added chunk by chunk: the dense
// accumulator's statistics for the pairs a screen chose, so memory grows with the list, not with
// every pair. Pairs may join variables of different layers (the variables are one flat set).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "pairmi/accumulate.hpp"
#include "pairmi/tiles.hpp"

namespace pairmi {

// Runs of pairs that share their first variable, at most `width` pairs each, as tiles (r0..r1 is a
// range of pair indices): a run codes its row once and counts the columns four at a time.
inline std::vector<Tile> pair_runs(const std::uint32_t* first, std::size_t pairs, std::size_t width) {
  std::vector<Tile> runs;
  std::size_t p0 = 0;
  for (std::size_t p = 1; p <= pairs; ++p)
    if (p == pairs || first[p] != first[p0] || p - p0 == width) {
      runs.push_back({0, p0, p, 0, 0});
      p0 = p;
    }
  return runs;
}

// Adds one chunk's counts of pairs (first[p], second[p]) of the codes (d, n) to counts (pairs,
// bins, bins), the first variable's code as the row. Pairs should be sorted by their first
// variable (runs then share the row's coding; any order gives the same counts). Counted per run
// in 32-bit scratch histograms (n < 2^32), then added to the 64-bit totals. The monitor runs
// between runs; when it stops the call, the runs already added are subtracted again, so the
// totals are as before, and false is returned.
inline bool add_pair_list_counts(const std::uint8_t* codes, std::size_t n, const std::uint32_t* first,
                                 const std::uint32_t* second, std::size_t pairs, int bins, std::uint64_t* counts,
                                 int threads = 1, const TileMonitor& monitor = {}) {
  const std::size_t cells = std::size_t(bins) * std::size_t(bins);
  const auto runs = pair_runs(first, pairs, 64);
  std::vector<char> added(runs.size(), 0);  // runs whose counts are in the totals
  const auto counter = [&](bool subtract) {
    return [&, subtract, row = std::size_t(-1), base = std::vector<std::uint16_t>(n),
            hist = std::vector<std::uint32_t>(8 * cells)](const Tile& t) mutable {
      if (first[t.r0] != row) {
        row = first[t.r0];
        const std::uint8_t* xi = codes + row * n;
        // bins <= 255: every cell index (< 255 * 255) fits in 16 bits.
        for (std::size_t s = 0; s < n; ++s) base[s] = std::uint16_t(xi[s] * bins);
      }
      for (std::size_t p = t.r0; p < t.r1; p += 4) {
        const std::size_t m = std::min<std::size_t>(4, t.r1 - p);
        const std::uint8_t* col[4];
        for (std::size_t k = 0; k < 4; ++k) col[k] = codes + std::size_t(second[p + std::min(k, m - 1)]) * n;
        std::uint32_t* h[8];
        for (std::size_t k = 0; k < 8; ++k) h[k] = hist.data() + k * cells;
        count_four(base.data(), n, col, h);
        for (std::size_t k = 0; k < m; ++k) add_split_counts(counts + (p + k) * cells, h[k], h[k + 4], cells, subtract);
        std::memset(hist.data(), 0, hist.size() * sizeof hist[0]);
      }
      if (!subtract) added[std::size_t(&t - runs.data())] = 1;
    };
  };
  return add_or_undo(runs, added, threads, monitor, counter);
}

// MI (nats times scale) of each listed pair from its joint counts (pairs, bins, bins) over n
// samples, as mi_from_counts computes a dense pair: the marginal counts are the joint's row and
// column sums (every sample is in every pair's histogram), entropies by entropy_of_counts.
// Plug-in values are clamped at 0 (Miller-Madow ones may be negative).
template <class Out>
void mi_from_pair_list_counts(const std::uint64_t* counts, std::size_t pairs, int bins, std::uint64_t n,
                              bool miller_madow, double scale, Out* out, int threads = 1) {
  const std::size_t b = std::size_t(bins), cells = b * b;
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<std::uint64_t> rows(b), cols(b);
#pragma omp for schedule(static)
    for (long p = 0; p < static_cast<long>(pairs); ++p) {
      const std::uint64_t* h = counts + std::size_t(p) * cells;
      std::fill(rows.begin(), rows.end(), 0);
      std::fill(cols.begin(), cols.end(), 0);
      for (std::size_t r = 0; r < b; ++r)
        for (std::size_t c = 0; c < b; ++c) {
          rows[r] += h[r * b + c];
          cols[c] += h[r * b + c];
        }
      const double mi = entropy_of_counts(rows.data(), b, n, miller_madow) +
                        entropy_of_counts(cols.data(), b, n, miller_madow) -
                        entropy_of_counts(h, cells, n, miller_madow);
      out[p] = static_cast<Out>(scale * (miller_madow ? mi : std::max(0.0, mi)));
    }
  }
  (void)threads;
}

}  // namespace pairmi

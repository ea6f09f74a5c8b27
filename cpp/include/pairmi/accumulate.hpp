// Joint bin counts of every pair of variables, added chunk by chunk: the sufficient statistics of
// binned MI. They are exact integers, so any chunking and any merge order give the same totals,
// and the MI computed from them equals the MI of all the samples binned at once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "pairmi/tiles.hpp"

namespace pairmi {

// Where pair (i, j) of one layer keeps its bins x bins counts: the upper triangle i < j for a set of
// dx variables against itself (row by row), else every (i, j) of dx x dy.
struct PairSlots {
  std::size_t dx, dy;
  bool upper;

  std::size_t count() const { return upper ? dx * (dx - 1) / 2 : dx * dy; }
  std::size_t operator()(std::size_t i, std::size_t j) const {
    return upper ? i * (2 * dx - i - 1) / 2 + (j - i - 1) : i * dy + j;
  }
};

// Joint histograms of the row codes (base: code * bins) against four columns' codes, added to
// h[0..8): column k's counts go to h[k] for even samples and h[k + 4] for odd ones, so that
// consecutive samples in one cell (the central bins of heavy-tailed data) do not wait on each
// other's increment. Each array is read four samples per load: the loop is bound by loads.
[[gnu::noinline]] inline void count_four(const std::uint16_t* __restrict base, std::size_t n,
                                         const std::uint8_t* const* col, std::uint32_t* const* h) {
  const std::uint8_t* __restrict y0 = col[0], * __restrict y1 = col[1], * __restrict y2 = col[2], * __restrict y3 = col[3];
  std::uint32_t* __restrict a0 = h[0], * __restrict a1 = h[1], * __restrict a2 = h[2], * __restrict a3 = h[3];
  std::uint32_t* __restrict b0 = h[4], * __restrict b1 = h[5], * __restrict b2 = h[6], * __restrict b3 = h[7];
  std::size_t s = 0;
  for (; s + 4 <= n; s += 4) {
    std::uint64_t a;
    std::uint32_t c[4];
    std::memcpy(&a, base + s, sizeof a);
    std::memcpy(&c[0], y0 + s, 4);
    std::memcpy(&c[1], y1 + s, 4);
    std::memcpy(&c[2], y2 + s, 4);
    std::memcpy(&c[3], y3 + s, 4);
    for (int u = 0; u < 4; u += 2) {
      const std::uint32_t r = std::uint32_t(a >> (16 * u)) & 0xFFFF, q = std::uint32_t(a >> (16 * u + 16)) & 0xFFFF;
      ++a0[r + ((c[0] >> (8 * u)) & 0xFF)];
      ++a1[r + ((c[1] >> (8 * u)) & 0xFF)];
      ++a2[r + ((c[2] >> (8 * u)) & 0xFF)];
      ++a3[r + ((c[3] >> (8 * u)) & 0xFF)];
      ++b0[q + ((c[0] >> (8 * u + 8)) & 0xFF)];
      ++b1[q + ((c[1] >> (8 * u + 8)) & 0xFF)];
      ++b2[q + ((c[2] >> (8 * u + 8)) & 0xFF)];
      ++b3[q + ((c[3] >> (8 * u + 8)) & 0xFF)];
    }
  }
  for (; s < n; ++s) {
    ++a0[base[s] + y0[s]];
    ++a1[base[s] + y1[s]];
    ++a2[base[s] + y2[s]];
    ++a3[base[s] + y3[s]];
  }
}

// Adds (or, to undo, subtracts) one pair's counts, kept in two 32-bit half-histograms (even and
// odd samples, see count_four), to its 64-bit totals.
inline void add_split_counts(std::uint64_t* total, const std::uint32_t* even, const std::uint32_t* odd,
                             std::size_t cells, bool subtract) {
  if (subtract)
    for (std::size_t c = 0; c < cells; ++c) total[c] -= std::uint64_t(even[c]) + odd[c];
  else
    for (std::size_t c = 0; c < cells; ++c) total[c] += std::uint64_t(even[c]) + odd[c];
}

// Runs counter(false)'s workers over the tiles, each marking its tile in `added` once its counts
// are in the totals. If the monitor stops the run, counter(true)'s workers subtract the tiles
// already added, so the totals are as before, and false is returned.
template <class Counter>
bool add_or_undo(const std::vector<Tile>& tiles, std::vector<char>& added, int threads, const TileMonitor& monitor,
                 const Counter& counter) {
  if (for_each_tile(tiles, threads, monitor, [&] { return counter(false); })) return true;
  std::vector<Tile> undo;
  for (std::size_t k = 0; k < tiles.size(); ++k)
    if (added[k]) undo.push_back(tiles[k]);
  for_each_tile(undo, threads, {}, [&] { return counter(true); });
  return false;
}

// Adds one chunk's counts to the totals. Codes x (layers, dx, n) and y (layers, dy, n), or y null
// for x against itself; counts (layers, slots, bins, bins) with x's code as the row of each pair's
// histogram (as binned_mi counts); marginal_x (layers, dx, bins) and marginal_y (layers, dy, bins,
// null for x against itself). Tiles of pairs keep their codes in cache; each pair is counted in a
// 32-bit scratch histogram (n < 2^32 per chunk) and then added to its 64-bit totals. The monitor
// runs between tiles; when it stops the run, the tiles already added are subtracted again, so the
// totals are as before the call, and false is returned.
inline bool add_pair_counts(const std::uint8_t* x, std::size_t dx, const std::uint8_t* y, std::size_t dy,
                            std::size_t layers, std::size_t n, int bins, std::uint64_t* counts,
                            std::uint64_t* marginal_x, std::uint64_t* marginal_y, int threads = 1,
                            const TileMonitor& monitor = {}) {
  const bool upper = (y == nullptr);
  const std::uint8_t* yy = upper ? x : y;
  if (upper) dy = dx;
  const std::size_t cells = std::size_t(bins) * std::size_t(bins);
  const PairSlots slot{dx, dy, upper};
  // Rows x columns of codes per tile: about 128 KiB of each side's codes, well inside L2.
  const std::size_t side = std::clamp<std::size_t>((std::size_t{128} << 10) / std::max<std::size_t>(n, 1), 4, 64);
  const auto tiles = make_tiles(layers, dx, dy, upper, side);
  std::vector<char> added(tiles.size(), 0);  // tiles whose counts are in the totals
  const auto counter = [&](bool subtract) {
    return [&, subtract, base = std::vector<std::uint16_t>(n),
            hist = std::vector<std::uint32_t>(8 * cells)](const Tile& t) mutable {
      for (std::size_t i = t.r0; i < t.r1; ++i) {
        const std::uint8_t* xi = x + (t.layer * dx + i) * n;
        // bins <= 255: every cell index (< 255 * 255) fits in 16 bits.
        for (std::size_t s = 0; s < n; ++s) base[s] = std::uint16_t(xi[s] * bins);
        const std::size_t j0 = upper ? std::max(t.c0, i + 1) : t.c0;
        for (std::size_t j = j0; j < t.c1; j += 4) {
          const std::size_t m = std::min<std::size_t>(4, t.c1 - j);
          const std::uint8_t* col[4];
          for (std::size_t k = 0; k < 4; ++k) col[k] = yy + (t.layer * dy + j + std::min(k, m - 1)) * n;
          std::uint32_t* h[8];
          for (std::size_t k = 0; k < 8; ++k) h[k] = hist.data() + k * cells;
          count_four(base.data(), n, col, h);
          for (std::size_t k = 0; k < m; ++k)
            add_split_counts(counts + (t.layer * slot.count() + slot(i, j + k)) * cells, h[k], h[k + 4], cells,
                             subtract);
          std::memset(hist.data(), 0, hist.size() * sizeof hist[0]);
        }
      }
      if (!subtract) added[std::size_t(&t - tiles.data())] = 1;
    };
  };
  if (!add_or_undo(tiles, added, threads, monitor, counter)) return false;
  const auto add_marginals = [&](const std::uint8_t* codes, std::size_t cols, std::uint64_t* marginal) {
#pragma omp parallel for schedule(static) num_threads(std::max(1, threads))
    for (long c = 0; c < static_cast<long>(layers * cols); ++c) {
      const std::uint8_t* v = codes + std::size_t(c) * n;
      std::uint64_t* h = marginal + std::size_t(c) * std::size_t(bins);
      for (std::size_t s = 0; s < n; ++s) ++h[v[s]];
    }
  };
  add_marginals(x, dx, marginal_x);
  if (!upper) add_marginals(y, dy, marginal_y);
  (void)threads;
  return true;
}

// Entropy (nats) of a histogram of `cells` counts summing to n > 0, computed as binned_mi computes
// it (XLogXTable): ln n - sum(c ln c - [Miller-Madow] 1/2) / n - [Miller-Madow] 1/(2n), cell by
// cell in order, clamped at 0.
inline double entropy_of_counts(const std::uint64_t* h, std::size_t cells, std::uint64_t n, bool miller_madow) {
  const double half = miller_madow ? 0.5 : 0.0;
  double s = 0.0;
  for (std::size_t c = 0; c < cells; ++c)
    if (h[c] > 0) s += double(h[c]) * std::log(double(h[c])) - half;
  return std::max(0.0, std::log(double(n)) - s / double(n) - (miller_madow ? 0.5 / double(n) : 0.0));
}

// MI (nats times scale) of every pair from the totals of add_pair_counts over n samples, into out
// (layers, dx, dy); for x against itself (marginal_y null) a symmetric matrix with the entropies on
// its diagonal. Plug-in values are clamped at 0 (Miller-Madow ones may be negative).
template <class Out>
void mi_from_counts(const std::uint64_t* counts, const std::uint64_t* marginal_x, const std::uint64_t* marginal_y,
                    std::size_t layers, std::size_t dx, std::size_t dy, int bins, std::uint64_t n, bool miller_madow,
                    double scale, Out* out, int threads = 1) {
  const bool upper = (marginal_y == nullptr);
  if (upper) dy = dx;
  const std::size_t cells = std::size_t(bins) * std::size_t(bins);
  const PairSlots slot{dx, dy, upper};
  std::vector<double> hx(layers * dx), hy(upper ? 0 : layers * dy);
  for (std::size_t c = 0; c < layers * dx; ++c)
    hx[c] = entropy_of_counts(marginal_x + c * std::size_t(bins), std::size_t(bins), n, miller_madow);
  for (std::size_t c = 0; c < hy.size(); ++c)
    hy[c] = entropy_of_counts(marginal_y + c * std::size_t(bins), std::size_t(bins), n, miller_madow);
  const std::vector<double>& hcol = upper ? hx : hy;
#pragma omp parallel for schedule(dynamic, 4) num_threads(std::max(1, threads))
  for (long r = 0; r < static_cast<long>(layers * dx); ++r) {
    const std::size_t l = std::size_t(r) / dx, i = std::size_t(r) % dx;
    Out* row = out + (l * dx + i) * dy;
    if (upper) row[i] = static_cast<Out>(scale * hx[l * dx + i]);
    for (std::size_t j = upper ? i + 1 : 0; j < dy; ++j) {
      const double joint = entropy_of_counts(counts + (l * slot.count() + slot(i, j)) * cells, cells, n, miller_madow);
      const double mi = hx[l * dx + i] + hcol[l * dy + j] - joint;
      const Out v = static_cast<Out>(scale * (miller_madow ? mi : std::max(0.0, mi)));
      row[j] = v;
      if (upper) out[(l * dx + j) * dy + i] = v;
    }
  }
  (void)threads;
}

}  // namespace pairmi

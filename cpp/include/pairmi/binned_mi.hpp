// All-pairs binned mutual information: one pass over the samples' codes per pair into a small joint
// histogram, entropies from the c*ln(c) table, pairs tiled and spread over OpenMP threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "pairmi/parallel.hpp"
#include "pairmi/xlogx.hpp"

namespace pairmi {

// Joint histograms of one row variable against up to kGroup column variables at once: the
// interleaved increments are independent, so repeated cells in one histogram do not stall the rest.
template <class Count>
class PairCounter {
 public:
  static constexpr int kGroup = 4;

  PairCounter(std::size_t n, int bins, const XLogXTable& f)
      : n_(n), cells_(std::size_t(bins) * bins), stride_(padded_cells<Count>(cells_)), bins_(bins),
        f_(f.data()), g_(f.steps()), sum_while_counting_(n < 4 * cells_), base_(n),
        hist_(kGroup * stride_, 0) {}

  void set_row(const std::uint8_t* x) {
    for (std::size_t t = 0; t < n_; ++t) base_[t] = std::uint32_t(x[t]) * std::uint32_t(bins_);
  }

  // s[k] = sum over cells of c*ln(c) in the joint histogram of the row against y[k], k < m <= kGroup.
  void joint_sums(const std::uint8_t* const* y, int m, double* s) {
    if (m == kGroup) return sums4(y, s);
    for (int k = 0; k < m; ++k) s[k] = sum1(y[k]);
  }

 private:
  // Few samples per cell (n = 90, 225 cells): the sum grows by steps[c] each time a cell holding c
  // gains a sample, so it is complete when counting ends. Many samples per cell: count only, then
  // one pass over the cells. Four histograms at once keep four dependency chains apart.
  void sums4(const std::uint8_t* const* y, double* s) {
    Count* __restrict h0 = hist_.data();
    Count* __restrict h1 = h0 + stride_;
    Count* __restrict h2 = h1 + stride_;
    Count* __restrict h3 = h2 + stride_;
    const std::uint8_t *__restrict y0 = y[0], *__restrict y1 = y[1], *__restrict y2 = y[2],
                       *__restrict y3 = y[3];
    const std::uint32_t* __restrict base = base_.data();
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (sum_while_counting_) {
      const double* __restrict g = g_;
      for (std::size_t t = 0; t < n_; ++t) {
        const std::uint32_t a = base[t];
        s0 += g[h0[a + y0[t]]++];
        s1 += g[h1[a + y1[t]]++];
        s2 += g[h2[a + y2[t]]++];
        s3 += g[h3[a + y3[t]]++];
      }
    } else {
      for (std::size_t t = 0; t < n_; ++t) {
        const std::uint32_t a = base[t];
        ++h0[a + y0[t]];
        ++h1[a + y1[t]];
        ++h2[a + y2[t]];
        ++h3[a + y3[t]];
      }
      const double* __restrict f = f_;
      for (std::size_t c = 0; c < cells_; ++c) {
        s0 += f[h0[c]];
        s1 += f[h1[c]];
        s2 += f[h2[c]];
        s3 += f[h3[c]];
      }
    }
    s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
    std::memset(h0, 0, kGroup * stride_ * sizeof(Count));
  }

  double sum1(const std::uint8_t* __restrict y) {
    Count* __restrict h = hist_.data();
    const std::uint32_t* __restrict base = base_.data();
    double s = 0;
    for (std::size_t t = 0; t < n_; ++t) s += g_[h[base[t] + y[t]]++];
    std::memset(h, 0, stride_ * sizeof(Count));
    return s;
  }

  std::size_t n_, cells_, stride_;
  int bins_;
  const double *f_, *g_;
  bool sum_while_counting_;
  std::vector<std::uint32_t> base_;
  std::vector<Count> hist_;
};

// Codes of `layers` stacked sets of `cols` variables: codes[(l * cols + c) * n + t], with each
// variable's plug-in entropy (nats) in entropy[l * cols + c].
struct CodedLayers {
  const std::uint8_t* codes;
  const double* entropy;
  std::size_t cols;
};

// Called by one thread between tiles with (tiles done, tiles in all); returning false stops the run.
using TileMonitor = std::function<bool(std::size_t, std::size_t)>;

struct Tile {
  std::size_t layer, r0, r1, c0, c1;
};

inline std::vector<Tile> make_tiles(std::size_t layers, std::size_t rows, std::size_t cols, bool upper,
                                    std::size_t size) {
  std::vector<Tile> tiles;
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t r0 = 0; r0 < rows; r0 += size)
      for (std::size_t c0 = upper ? r0 : 0; c0 < cols; c0 += size)
        tiles.push_back({l, r0, std::min(rows, r0 + size), c0, std::min(cols, c0 + size)});
  return tiles;
}

// MI of each pair in one tile into out (row-major, rows x cols per layer), times `scale` (1 for nats,
// 1/ln 2 for bits). With `upper`, x and y are the same variables: only pairs j > i are counted, each
// mirrored, and the diagonal holds the entropy.
template <class Count, class Out>
void mi_tile(const Tile& tile, const CodedLayers& x, const CodedLayers& y, bool upper, std::size_t n,
             const XLogXTable& f, double scale, PairCounter<Count>& counter, Out* out) {
  const std::size_t ld = y.cols;
  Out* o = out + tile.layer * x.cols * ld;
  const std::uint8_t* xc = x.codes + tile.layer * x.cols * n;
  const std::uint8_t* yc = y.codes + tile.layer * y.cols * n;
  const double* hx = x.entropy + tile.layer * x.cols;
  const double* hy = y.entropy + tile.layer * y.cols;
  const std::uint8_t* cols[PairCounter<Count>::kGroup];
  double s[PairCounter<Count>::kGroup];
  for (std::size_t i = tile.r0; i < tile.r1; ++i) {
    counter.set_row(xc + i * n);
    std::size_t j = tile.c0;
    if (upper && j <= i) {
      o[i * ld + i] = static_cast<Out>(scale * hx[i]);
      j = i + 1;
    }
    while (j < tile.c1) {
      const int m = static_cast<int>(std::min<std::size_t>(PairCounter<Count>::kGroup, tile.c1 - j));
      for (int k = 0; k < m; ++k) cols[k] = yc + (j + k) * n;
      counter.joint_sums(cols, m, s);
      for (int k = 0; k < m; ++k) {
        // Plug-in MI is >= 0 exactly; clamping removes only rounding below zero.
        const double mi = std::max(0.0, hx[i] + hy[j + k] - f.entropy(s[k]));
        o[i * ld + j + k] = static_cast<Out>(scale * mi);
        if (upper) o[(j + k) * ld + i] = static_cast<Out>(scale * mi);
      }
      j += m;
    }
  }
}

template <class Count, class Out>
bool run_tiles(const std::vector<Tile>& tiles, const CodedLayers& x, const CodedLayers& y, bool upper,
               std::size_t n, int bins, double scale, Out* out, int threads, const TileMonitor& monitor) {
  const XLogXTable f(n);
  std::atomic<bool> stop{false};
  const long count = static_cast<long>(tiles.size());
#pragma omp parallel num_threads(threads)
  {
    PairCounter<Count> counter(n, bins, f);
#pragma omp for schedule(dynamic, 1)
    for (long k = 0; k < count; ++k) {
      if (stop.load(std::memory_order_relaxed)) continue;
      mi_tile<Count>(tiles[static_cast<std::size_t>(k)], x, y, upper, n, f, scale, counter, out);
      if (monitor && thread_index() == 0) {
        // Tiles are handed out in order, so k + 1 approximates the number finished.
        if (!monitor(static_cast<std::size_t>(k) + 1, tiles.size())) stop.store(true, std::memory_order_relaxed);
      }
    }
  }
  (void)threads;
  return !stop.load();
}

// Binned MI of every pair of variables, for every layer. If y is null, pairs are x against itself
// (square, symmetric output, entropies on the diagonal); otherwise x against y (rectangular).
// out holds layers x x.cols x (y ? y->cols : x.cols) values. Returns false if the monitor stopped it.
template <class Out>
bool binned_mi(const CodedLayers& x, const CodedLayers* y, std::size_t layers, std::size_t n, int bins,
               double scale, Out* out, int threads = 1, const TileMonitor& monitor = {}) {
  const bool upper = (y == nullptr);
  const CodedLayers& yy = upper ? x : *y;
  // A tile's row and column codes (2 * size * n bytes) stay well inside a core's L2 cache.
  const std::size_t tile_size = std::clamp<std::size_t>((std::size_t{64} << 10) / std::max<std::size_t>(n, 1) / 4 * 4, 4, 64);
  const auto tiles = make_tiles(layers, x.cols, yy.cols, upper, tile_size);
  threads = std::max(1, threads);
  if (n <= 0xFF) return run_tiles<std::uint8_t>(tiles, x, yy, upper, n, bins, scale, out, threads, monitor);
  if (n <= 0xFFFF) return run_tiles<std::uint16_t>(tiles, x, yy, upper, n, bins, scale, out, threads, monitor);
  return run_tiles<std::uint32_t>(tiles, x, yy, upper, n, bins, scale, out, threads, monitor);
}

// Plug-in entropy (nats) of each of `cols` coded variables (codes[c * n + t]).
inline void column_entropies(const std::uint8_t* codes, std::size_t cols, std::size_t n, int bins,
                             double* entropy, int threads = 1) {
  const XLogXTable f(n);
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<std::uint32_t> hist;
#pragma omp for schedule(static)
    for (long c = 0; c < static_cast<long>(cols); ++c)
      entropy[c] = column_entropy(codes + std::size_t(c) * n, n, bins, f, hist);
  }
  (void)threads;
}

}  // namespace pairmi

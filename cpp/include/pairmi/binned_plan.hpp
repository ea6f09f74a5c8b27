// How a binned run is laid out: which variable each tile row and column stands for, the row
// variables' bin groups and the columns in the rank kernel's lanes, and the tiles.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pairmi/binned_kernels.hpp"
#include "pairmi/tiles.hpp"

namespace pairmi {

// Codes of `layers` stacked sets of `cols` variables: codes[(l * cols + c) * n + t], with each
// variable's entropy (nats, from the same XLogXTable as the run) in entropy[l * cols + c].
struct CodedLayers {
  const std::uint8_t* codes;
  const double* entropy;
  std::size_t cols;
};

// Every layer's variables in a given order, in blocks of `lanes` variables laid out sample by
// sample, as RankCounter reads them (0 in a last block's unused lanes). Built once per call and
// shared by all tiles (transposed per tile in each worker instead, they cost 6 % more time).
class ColumnLanes {
 public:
  ColumnLanes() = default;
  // order[l * c.cols + i]: the variable in position i of layer l.
  ColumnLanes(const CodedLayers& c, const std::vector<std::uint32_t>& order, std::size_t layers, std::size_t n,
              int lanes, int threads)
      : n_(n),
        lanes_(std::size_t(lanes)),
        blocks_((c.cols + lanes_ - 1) / lanes_),
        data_(layers * blocks_ * lanes_ * n, 0) {
#pragma omp parallel for schedule(static) num_threads(std::max(1, threads))
    for (long b = 0; b < static_cast<long>(layers * blocks_); ++b) {
      const std::size_t l = std::size_t(b) / blocks_, i0 = std::size_t(b) % blocks_ * lanes_;
      const std::size_t m = std::min(lanes_, c.cols - i0);
      std::uint8_t* out = &data_[std::size_t(b) * lanes_ * n];
      for (std::size_t k = 0; k < m; ++k) {
        const std::uint8_t* codes = c.codes + (l * c.cols + order[l * c.cols + i0 + k]) * n;
        for (std::size_t t = 0; t < n; ++t) out[t * lanes_ + k] = codes[t];
      }
    }
    (void)threads;
  }

  // Bytes the constructor allocates for `cols` variables per layer, for a caller's memory check.
  static std::size_t bytes(std::size_t layers, std::size_t cols, std::size_t n, int lanes) {
    const std::size_t width = std::size_t(lanes);
    return layers * ((cols + width - 1) / width) * width * n;
  }

  // The block of layer l starting at position i (a multiple of the lanes).
  const std::uint8_t* block(std::size_t l, std::size_t i) const {
    return &data_[(l * blocks_ + i / lanes_) * lanes_ * n_];
  }

 private:
  std::size_t n_ = 0, lanes_ = 1, blocks_ = 0;
  std::vector<std::uint8_t> data_;
};

// Which variable each tile row and column stands for, per layer, and, where n <=
// RankCounter::kMaxSamples, the row variables' groups and the columns in the rank kernel's lanes.
// Each side's variables run in order of ranking cost, so cheap variables share tiles: for a set
// against itself, each pair's row is then the cheaper of its two variables; X against Y gives each
// tile the cheaper side as rows (CrossTileWorker).
struct PairPlan {
  BinGroups groups;                             // of the row variables
  std::vector<std::uint32_t> x_order, y_order;  // [l * cols + i]: variable of row (column) i of layer l
  ColumnLanes columns;                          // the column variables, in y_order

  void lay_out_columns(const CodedLayers& y, std::size_t layers, std::size_t n, int lanes, int threads) {
    if (!groups.empty()) columns = ColumnLanes(y, y_order, layers, n, lanes, threads);
  }
};

inline BinGroups groups_of(const CodedLayers& c, std::size_t layers, std::size_t n, int bins, int threads) {
  return n <= RankCounter::kMaxSamples ? BinGroups(c.codes, layers * c.cols, n, bins, threads) : BinGroups();
}

// Each layer's variables, cheapest to rank against first (in their order without groups).
inline std::vector<std::uint32_t> cost_order(const BinGroups& groups, std::size_t layers, std::size_t cols) {
  std::vector<std::uint32_t> order(layers * cols);
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = static_cast<std::uint32_t>(k % cols);
  for (std::size_t l = 0; !groups.empty() && l < layers; ++l) {
    const auto first = order.begin() + std::ptrdiff_t(l * cols);
    std::stable_sort(first, first + std::ptrdiff_t(cols), [&](std::uint32_t a, std::uint32_t b) {
      return groups.cost(l * cols + a) < groups.cost(l * cols + b);
    });
  }
  return order;
}

// x against itself: rows and columns in the same order. lanes: the rank kernel's.
inline PairPlan square_plan(const CodedLayers& x, std::size_t layers, std::size_t n, int bins, int lanes, int threads) {
  PairPlan plan{groups_of(x, layers, n, bins, threads), {}, {}, {}};
  plan.x_order = cost_order(plan.groups, layers, x.cols);
  plan.y_order = plan.x_order;
  plan.lay_out_columns(x, layers, n, lanes, threads);
  return plan;
}

// x against y, as tiles of x rows (by_x) and, transposed, of y rows (by_y).
struct CrossPlans {
  PairPlan by_x, by_y;
  CrossPlans(const CodedLayers& x, const CodedLayers& y, std::size_t layers, std::size_t n, int bins, int lanes,
             int threads)
      : by_x{groups_of(x, layers, n, bins, threads), {}, {}, {}},
        by_y{groups_of(y, layers, n, bins, threads), {}, {}, {}} {
    by_x.x_order = by_y.y_order = cost_order(by_x.groups, layers, x.cols);
    by_x.y_order = by_y.x_order = cost_order(by_y.groups, layers, y.cols);
    by_x.lay_out_columns(y, layers, n, lanes, threads);
    by_y.lay_out_columns(x, layers, n, lanes, threads);
  }
};

// Bytes a binned run's plans allocate (square_plan for y_cols 0, else CrossPlans), at most: the
// variable orders, and with the rank kernel's few samples the groups and columns in lanes.
inline std::size_t binned_plan_bytes(std::size_t layers, std::size_t n, std::size_t x_cols, std::size_t y_cols,
                                     int bins) {
  const bool square = y_cols == 0;
  const std::size_t vars = layers * (x_cols + (square ? x_cols : y_cols));
  std::size_t bytes = vars * sizeof(std::uint32_t);  // x_order and y_order of each plan
  if (!square) bytes *= 2;
  if (n > RankCounter::kMaxSamples) return bytes;
  const int lanes = RankCounter::kMaxLanes;
  if (square) return bytes + BinGroups::bytes(layers * x_cols, n, bins) + ColumnLanes::bytes(layers, x_cols, n, lanes);
  return bytes + BinGroups::bytes(vars, n, bins) + ColumnLanes::bytes(layers, x_cols, n, lanes) +
         ColumnLanes::bytes(layers, y_cols, n, lanes);
}

// Tiles start at multiples of the rank kernel's lanes (ColumnLanes' blocks). With few samples (the
// rank kernel's n), a set against itself takes whole rows, 16 a tile: each row's outputs then land
// in one stretch of memory while it runs, instead of a 64-column piece of it per tile (5 % faster).
// Otherwise tiles are square, their row and column codes (2 * size * n bytes) well inside a core's L2
// cache; X against Y keeps them so, as it picks each tile's rows side by side.
inline std::vector<Tile> binned_tiles(std::size_t layers, std::size_t rows, std::size_t cols, bool upper,
                                      std::size_t n) {
  constexpr std::size_t kWholeRows = 16;         // rows of a tile of whole rows
  constexpr std::size_t kMaxSide = 64;           // a square tile's largest side
  constexpr std::size_t kSideCodes = 64u << 10;  // bytes of one side's codes, at most (side * n)
  constexpr std::size_t lanes = RankCounter::kMaxLanes;
  static_assert(kMaxSide % lanes == 0, "tiles must start at multiples of the rank kernel's lanes");
  const bool few = n <= RankCounter::kMaxSamples;
  if (upper && few) return make_tiles(layers, rows, cols, upper, kWholeRows, (cols + lanes - 1) / lanes * lanes);
  const std::size_t size = few ? kMaxSide : std::clamp<std::size_t>(kSideCodes / n / 4 * 4, 4, kMaxSide);
  return make_tiles(layers, rows, cols, upper, size);
}

}  // namespace pairmi

// All-pairs binned mutual information: one pass over the samples' codes per pair into a small joint
// histogram, entropies from the c*ln(c) table, pairs tiled and spread over OpenMP threads. This
// file runs the tiles (BinnedTileWorker) and chooses the count type; the kernels are in
// binned_kernels.hpp, the layout in binned_plan.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "pairmi/binned_kernels.hpp"
#include "pairmi/binned_plan.hpp"
#include "pairmi/tiles.hpp"
#include "pairmi/xlogx.hpp"

namespace pairmi {

// One thread's worker: MI of each pair of a tile. Each row takes the cheaper of two kernels: four
// joint histograms at once (PairCounter), or, for few samples spread over many row bins, ranks
// within row bins for 16 or 32 columns at once (RankCounter).
template <class Count, class Out>
class BinnedTileWorker {
 public:
  BinnedTileWorker(const CodedLayers& x, const CodedLayers& y, std::size_t n, int bins, const XLogXTable& f, bool clamp,
                   const PairWriter<Out>& write, const PairPlan& plan, int rank_lanes)
      : x_(x),
        y_(y),
        n_(n),
        f_(f),
        clamp_(clamp),
        write_(write),
        plan_(plan),
        counter_(n, bins, f),
        ranks_(n, bins, f, rank_lanes) {}

  void operator()(const Tile& t) {
    for (std::size_t i = t.r0; i < t.r1; ++i) {
      const std::size_t a = row_var(t, i);
      std::size_t j = t.c0;
      if (write_.upper && j <= i) {
        write_(t, a, a, x_.entropy[x_index(t, a)]);  // MI of a variable with itself: its entropy
        j = i + 1;
      }
      if (j >= t.c1) continue;
      if (use_ranks(t, a))
        rank_row(t, a, j);
      else
        count_row(t, a, j);
    }
  }

 private:
  std::size_t row_var(const Tile& t, std::size_t i) const { return plan_.x_order[t.layer * x_.cols + i]; }
  std::size_t col_var(const Tile& t, std::size_t j) const { return plan_.y_order[t.layer * y_.cols + j]; }
  // Index of row variable a among all layers' x variables (codes, entropies, groups).
  std::size_t x_index(const Tile& t, std::size_t a) const { return t.layer * x_.cols + a; }

  // Ranks pay while the row's squared group sizes stay below this many per sample: timed from 12 to
  // 44 at 90 samples (normal and Student-t data, 16 and 32 lanes), 26 was as fast as the best.
  static constexpr std::size_t kRankCostPerSample = 26;

  bool use_ranks(const Tile& t, std::size_t a) const {
    return !plan_.groups.empty() && plan_.groups.cost(x_index(t, a)) < kRankCostPerSample * n_;
  }

  // Row variable a against the variables of columns j0..t.c1, four at a time.
  void count_row(const Tile& t, std::size_t a, std::size_t j0) {
    constexpr int kGroup = PairCounter<Count>::kGroup;
    const std::uint8_t* yc = y_.codes + t.layer * y_.cols * n_;
    const std::uint8_t* cols[kGroup];
    double s[kGroup];
    counter_.set_row(x_.codes + x_index(t, a) * n_);
    for (std::size_t j = j0; j < t.c1;) {
      const int m = static_cast<int>(std::min<std::size_t>(kGroup, t.c1 - j));
      for (int k = 0; k < m; ++k) cols[k] = yc + col_var(t, j + k) * n_;
      counter_.joint_sums(cols, m, s);
      for (int k = 0; k < m; ++k) write_pair(t, a, col_var(t, j + k), s[k]);
      j += m;
    }
  }

  // Row variable a against the variables of columns j0..t.c1, ranks_.lanes() at a time (tiles start
  // at multiples of the lanes, see binned_tiles).
  void rank_row(const Tile& t, std::size_t a, std::size_t j0) {
    const std::size_t w = std::size_t(ranks_.lanes());
    double s[RankCounter::kMaxLanes];
    for (std::size_t jb = j0 / w * w; jb < t.c1; jb += w) {
      ranks_.sums(plan_.groups, x_index(t, a), plan_.columns.block(t.layer, jb), s);
      for (std::size_t j = std::max(jb, j0); j < std::min(jb + w, t.c1); ++j)
        write_pair(t, a, col_var(t, j), s[j - jb]);
    }
  }

  // Variables a (of x) and b (of y); sum_f: sum over their joint-histogram cells of f[c].
  void write_pair(const Tile& t, std::size_t a, std::size_t b, double sum_f) {
    const double mi = x_.entropy[x_index(t, a)] + y_.entropy[t.layer * y_.cols + b] - f_.entropy(sum_f);
    // Plug-in MI is >= 0 exactly: clamping removes only rounding below zero. Corrected estimates may
    // be negative and are kept so.
    write_(t, a, b, clamp_ ? std::max(0.0, mi) : mi);
  }

  const CodedLayers &x_, &y_;
  std::size_t n_;
  const XLogXTable& f_;
  bool clamp_;
  PairWriter<Out> write_;
  const PairPlan& plan_;
  PairCounter<Count> counter_;
  RankCounter ranks_;
};

// X against Y: each tile runs with x's variables as rows, or transposed with y's, whichever side's
// variables there (at the tile's middle row and column, both sides being in order of cost) are
// cheaper to rank against. The choice depends on the tile alone, so results do not depend on the
// thread count.
template <class Worker>
class CrossTileWorker {
 public:
  CrossTileWorker(Worker by_x, Worker by_y, const CrossPlans& plans, std::size_t d_x, std::size_t d_y)
      : by_x_(std::move(by_x)), by_y_(std::move(by_y)), plans_(plans), dx_(d_x), dy_(d_y) {}

  void operator()(const Tile& t) {
    if (y_rows_cheaper(t))
      by_y_(Tile{t.layer, t.c0, t.c1, t.r0, t.r1});
    else
      by_x_(t);
  }

 private:
  bool y_rows_cheaper(const Tile& t) const {
    const PairPlan &px = plans_.by_x, &py = plans_.by_y;
    if (px.groups.empty()) return false;
    const std::size_t a = px.x_order[t.layer * dx_ + (t.r0 + t.r1) / 2];
    const std::size_t b = px.y_order[t.layer * dy_ + (t.c0 + t.c1) / 2];
    return py.groups.cost(t.layer * dy_ + b) < px.groups.cost(t.layer * dx_ + a);
  }

  Worker by_x_, by_y_;
  const CrossPlans& plans_;
  std::size_t dx_, dy_;
};

template <class Count, class Out>
bool run_binned(const std::vector<Tile>& tiles, const CodedLayers& x, const CodedLayers* y, std::size_t layers,
                std::size_t n, int bins, const XLogXTable& f, bool clamp, const PairWriter<Out>& write, int threads,
                const TileMonitor& monitor, int rank_lanes) {
  using Worker = BinnedTileWorker<Count, Out>;
  rank_lanes = rank_lanes == 16 ? 16 : RankCounter::widest_lanes();
  if (!y) {
    const PairPlan plan = square_plan(x, layers, n, bins, rank_lanes, threads);
    return for_each_tile(tiles, threads, monitor,
                         [&] { return Worker(x, x, n, bins, f, clamp, write, plan, rank_lanes); });
  }
  const CrossPlans plans(x, *y, layers, n, bins, rank_lanes, threads);
  PairWriter<Out> transposed = write;
  transposed.transposed = true;
  return for_each_tile(tiles, threads, monitor, [&] {
    return CrossTileWorker<Worker>(Worker(x, *y, n, bins, f, clamp, write, plans.by_x, rank_lanes),
                                   Worker(*y, x, n, bins, f, clamp, transposed, plans.by_y, rank_lanes), plans, x.cols,
                                   y->cols);
  });
}

// Binned MI of every pair of variables, for every layer. If y is null, pairs are x against itself
// (square, symmetric output, entropies on the diagonal); otherwise x against y (rectangular).
// out holds layers x x.cols x (y ? y->cols : x.cols) values, in nats times `scale`. Entropies in x
// and y must come from column_entropies with the same miller_madow. rank_lanes: byte lanes of the
// rank kernel (16, 32 where the CPU has AVX2, 0 for the widest it runs); the results are the same.
// Returns false if the monitor stopped the run.
template <class Out>
bool binned_mi(const CodedLayers& x, const CodedLayers* y, std::size_t layers, std::size_t n, int bins, double scale,
               Out* out, int threads = 1, const TileMonitor& monitor = {}, bool miller_madow = false,
               int rank_lanes = 0) {
  const bool upper = (y == nullptr);
  const CodedLayers& yy = upper ? x : *y;
  const auto tiles = binned_tiles(layers, x.cols, yy.cols, upper, n);
  const XLogXTable f(n, miller_madow);
  const PairWriter<Out> write{out, x.cols, yy.cols, upper, scale};
  const bool clamp = !miller_madow;
  // Byte counts suit the loop that sums while counting (n = 90); four-byte counts the loop that
  // only counts (two-byte read-modify-writes made it 23 % slower on Zen 1, at 4096 samples).
  if (n <= 0xFF && sum_while_counting(n, bins))
    return run_binned<std::uint8_t>(tiles, x, y, layers, n, bins, f, clamp, write, threads, monitor, rank_lanes);
  return run_binned<std::uint32_t>(tiles, x, y, layers, n, bins, f, clamp, write, threads, monitor, rank_lanes);
}

// Entropy (nats) of each of `cols` coded variables (codes[c * n + t]), plug-in or Miller-Madow.
inline void column_entropies(const std::uint8_t* codes, std::size_t cols, std::size_t n, int bins, double* entropy,
                             int threads = 1, bool miller_madow = false) {
  const XLogXTable f(n, miller_madow);
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

// All-pairs Kraskov-Stoegbauer-Grassberger MI (algorithm 1), computed as scikit-learn's
// mutual_info_regression computes it for two continuous variables: each variable scaled to unit
// variance, max-norm in the joint space, eps_i = distance to the k-th neighbour, n_x(i) and n_y(i)
// = other samples strictly closer than eps_i in each marginal, and
//     MI = psi(N) + psi(k) - <psi(n_x + 1)> - <psi(n_y + 1)>   (nats), clipped at 0.
// Neighbours are found in a window around each sample in one variable's sorted order, so a pair
// costs about N * sqrt(k N) distance evaluations rather than N^2. Consecutive samples of that order
// walk together, one per vector lane, a fixed chunk of neighbours at a time: the loads are
// contiguous and the only branches are the checks between chunks.
//
// The walks run in float32, twice the lanes of float64, and the counts stay exact: each sample's
// float32 distances are within a bound e of the float64 ones, so its counts also tally the
// distances within 4e of its float32 eps (its band). In exact arithmetic one distance lies there:
// the k-th neighbour's, in the variable where its max-norm distance is attained, and that one is
// not counted (the counts are strict). A sample whose two bands hold anything else (a near tie) is
// recomputed in float64 on its own, so the results equal the float64 definition exactly.
//
// For long inputs (kKsgSearchFrom) the counts come from binary searches instead
// (count_by_search_avx2): counting windows that wide by walking them again cost more than
// searching for their ends. And the samples in the tails of the column variable walk in its order,
// not the row variable's: far from the others in it, they had the widest windows in the other
// order, and each block of eight walked as far as its widest lane.
// This file runs the tiles of pairs (KsgTileWorker); one pair's sum is in ksg_pair.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

#include "pairmi/ksg_columns.hpp"
#include "pairmi/ksg_pair.hpp"
#include "pairmi/simd.hpp"
#include "pairmi/tiles.hpp"

namespace pairmi {

// Lanes the KSG kernel runs: 8 where the CPU has AVX2 (chosen at run time: wheels stay baseline
// x86-64), else 4.
inline int ksg_widest_lanes() { return cpu_has_avx2() ? 8 : 4; }

// Pairs per tile side (scheduling and progress granularity; pairs are computed one by one).
inline std::size_t ksg_tile_side(std::size_t n) { return n <= 2048 ? 16 : n <= 8192 ? 8 : 4; }

// Bytes of scratch one thread's KSG worker allocates.
inline std::size_t ksg_worker_bytes(std::size_t n, int k) {
  return sizeof(float) * (11 * n + 4 * kKsgGuard) + (8 + 64) * std::size_t(k) + 32;
}

// One thread's KSG worker: each pair of a tile on its own (x's variables as rows).
template <class Out>
class KsgTileWorker {
 public:
  KsgTileWorker(const SortedColumns& x, const SortedColumns& y, std::size_t d_x, std::size_t d_y, int k,
                const std::vector<double>& psi, const PairWriter<Out>& write, int lanes, const StopCheck& stop = {})
      : x_(x),
        y_(y),
        dx_(d_x),
        dy_(d_y),
        k_(k),
        psi_(psi),
        write_(write),
        lanes_(x.n >= 8 && lanes == 8 ? 8 : 4),
        scratch_(x.n, k) {
    scratch_.should_stop = stop;
  }

  void operator()(const Tile& t) {
    const std::size_t n = x_.n;
    for (std::size_t i = t.r0; i < t.r1; ++i)
      for (std::size_t j = std::max(t.c0, write_.upper ? i : 0); j < t.c1; ++j) {
        const std::size_t a = t.layer * dx_ + i, b = t.layer * dy_ + j;
        double nats = 0.0;  // a constant variable shares nothing
        if (write_.upper && i == j)
          nats = std::numeric_limits<double>::infinity();  // a continuous variable with itself
        else if (!x_.constant[a] && !y_.constant[b])
          nats = std::max(0.0, psi_[n] + psi_[std::size_t(k_)] - pair_sum(a, b) / double(n));
        write_(t, i, j, nats);
      }
  }

 private:
  double pair_sum(std::size_t a, std::size_t b) {
    const KsgPair pair = ksg_pair(x_, a, y_, b);
    // Too few samples for a lane block: all in float64.
    if (x_.n < std::size_t(lanes_)) return ksg_pair_sum_exact(pair, x_.n, k_, psi_.data(), scratch_);
#ifdef PAIRMI_AVX2_KERNELS
    if (lanes_ == 8 && x_.n >= kKsgSearchFrom) return ksg_pair_sum_search_avx2(pair, x_.n, k_, psi_.data(), scratch_);
    if (lanes_ == 8) return ksg_pair_sum_avx2(pair, x_.n, k_, psi_.data(), scratch_);
#endif
    return ksg_pair_sum_for_k<4>(pair, x_.n, k_, psi_.data(), scratch_);
  }

  const SortedColumns &x_, &y_;
  std::size_t dx_, dy_;
  int k_;
  const std::vector<double>& psi_;
  PairWriter<Out> write_;
  int lanes_;
  KsgScratch scratch_;
};

// KSG MI of every pair, every layer: x (layers x d_x variables) against itself (y null: symmetric,
// +inf on the diagonal) or against y. out is layers x d_x x d_y, nats times `scale`. Needs k < n.
// lanes: 4, or 0 for the widest the CPU runs (ksg_widest_lanes); the results are the same.
template <class Out>
bool ksg_mi(const SortedColumns& x, const SortedColumns* y, std::size_t layers, int k, double scale, Out* out,
            int threads = 1, const TileMonitor& monitor = {}, int lanes = 0) {
  if (layers == 0) return true;  // nothing to compute (and no variables per layer to divide by)
  const bool upper = (y == nullptr);
  const SortedColumns& yy = upper ? x : *y;
  const std::size_t dx = x.cols / layers, dy = yy.cols / layers;
  const auto tiles = make_tiles(layers, dx, dy, upper, ksg_tile_side(x.n));
  const auto psi = digamma_table(x.n);
  const PairWriter<Out> write{out, dx, dy, upper, scale};
  const int w = lanes == 4 ? 4 : ksg_widest_lanes();
  return for_each_tile(tiles, threads, monitor, [&](const StopCheck& stop) {
    return KsgTileWorker<Out>(x, yy, dx, dy, k, psi, write, w, stop);
  });
}

}  // namespace pairmi

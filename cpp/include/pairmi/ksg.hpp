// All-pairs Kraskov-Stoegbauer-Grassberger MI (algorithm 1), computed as scikit-learn's
// mutual_info_regression computes it for two continuous variables: each variable scaled to unit
// variance, max-norm in the joint space, eps_i = distance to the k-th neighbour, n_x(i) and n_y(i)
// = other samples strictly closer than eps_i in each marginal, and
//     MI = psi(N) + psi(k) - <psi(n_x + 1)> - <psi(n_y + 1)>   (nats), clipped at 0.
// Neighbours are found in a window around each sample in one variable's sorted order, so a pair
// costs about N * sqrt(k N) distance evaluations rather than N^2.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "pairmi/tiles.hpp"

namespace pairmi {

// Each variable of `layers` stacked row-major (n, d) matrices, scaled to unit variance (population
// std, as sklearn's scale(); a constant variable keeps scale 1) and sorted once.
struct SortedColumns {
  std::size_t cols = 0, n = 0;           // cols = layers * d, indexed l * d + c
  std::vector<double> value;             // [col * n + t]: scaled value of sample t
  std::vector<double> sorted;            // [col * n + p]: p-th smallest scaled value
  std::vector<std::uint32_t> order;      // [col * n + p]: sample at sorted position p
  std::vector<std::uint32_t> position;   // [col * n + t]: sorted position of sample t
  std::vector<std::uint8_t> constant;    // [col]: all values equal

  const double* val(std::size_t c) const { return &value[c * n]; }
  const double* srt(std::size_t c) const { return &sorted[c * n]; }
  const std::uint32_t* ord(std::size_t c) const { return &order[c * n]; }
  const std::uint32_t* pos(std::size_t c) const { return &position[c * n]; }
};

template <class T>
SortedColumns sort_columns(const T* x, std::size_t layers, std::size_t n, std::size_t d, int threads = 1) {
  SortedColumns s;
  s.cols = layers * d;
  s.n = n;
  s.value.resize(s.cols * n);
  s.sorted.resize(s.cols * n);
  s.order.resize(s.cols * n);
  s.position.resize(s.cols * n);
  s.constant.resize(s.cols);
#pragma omp parallel for schedule(dynamic, 16) num_threads(std::max(1, threads))
  for (long col = 0; col < static_cast<long>(s.cols); ++col) {
    const std::size_t c = std::size_t(col), l = c / d, k = c % d;
    double* v = &s.value[c * n];
    for (std::size_t t = 0; t < n; ++t) v[t] = static_cast<double>(x[(l * n + t) * d + k]);
    double mean = 0.0, var = 0.0;
    for (std::size_t t = 0; t < n; ++t) mean += v[t];
    mean /= double(n);
    for (std::size_t t = 0; t < n; ++t) var += (v[t] - mean) * (v[t] - mean);
    const double sd = std::sqrt(var / double(n));
    if (sd > 0)
      for (std::size_t t = 0; t < n; ++t) v[t] /= sd;
    std::uint32_t* o = &s.order[c * n];
    std::iota(o, o + n, std::uint32_t{0});
    std::stable_sort(o, o + n, [v](std::uint32_t a, std::uint32_t b) { return v[a] < v[b]; });
    for (std::size_t p = 0; p < n; ++p) {
      s.sorted[c * n + p] = v[o[p]];
      s.position[c * n + o[p]] = static_cast<std::uint32_t>(p);
    }
    s.constant[c] = s.sorted[c * n] == s.sorted[c * n + n - 1];
  }
  (void)threads;
  return s;
}

// psi(m) for m = 0..n (psi(0) unused): psi(1) = -Euler's gamma, psi(m + 1) = psi(m) + 1/m.
inline std::vector<double> digamma_table(std::size_t n) {
  std::vector<double> psi(n + 1, 0.0);
  psi[1] = -0.57721566490153286060651209;
  for (std::size_t m = 1; m < n; ++m) psi[m + 1] = psi[m] + 1.0 / double(m);
  return psi;
}

// Number of entries of ascending v, other than position p, strictly within r of v[p]: counted
// outwards from p (the counts are small, and a linear walk has no unpredictable branches).
inline std::size_t count_within(const double* v, std::size_t n, std::size_t p, double r) {
  const double vp = v[p];
  std::size_t lo = p, hi = p + 1;
  while (lo > 0 && vp - v[lo - 1] < r) --lo;
  while (hi < n && v[hi] - vp < r) ++hi;
  return (p - lo) + (hi - p - 1);
}

// One thread's KSG worker; scratch holds y in x's sorted order and the k best distances.
template <class Out>
class KsgTileWorker {
 public:
  KsgTileWorker(const SortedColumns& x, const SortedColumns& y, std::size_t d_x, std::size_t d_y, int k,
                const std::vector<double>& psi, const PairWriter<Out>& write)
      : x_(x), y_(y), dx_(d_x), dy_(d_y), k_(static_cast<std::size_t>(k)), psi_(psi), write_(write),
        y_by_x_(x.n), best_(k_) {}

  void operator()(const Tile& t) {
    for (std::size_t i = t.r0; i < t.r1; ++i)
      for (std::size_t j = std::max(t.c0, write_.upper ? i : 0); j < t.c1; ++j) {
        const bool same = write_.upper && i == j;  // a continuous variable with itself: infinite MI
        write_(t, i, j, same ? std::numeric_limits<double>::infinity()
                             : pair(t.layer * dx_ + i, t.layer * dy_ + j));
      }
  }

  double pair(std::size_t a, std::size_t b) {
    if (x_.constant[a] || y_.constant[b]) return 0.0;
    const std::size_t n = x_.n;
    const double* xs = x_.srt(a);
    const std::uint32_t* xo = x_.ord(a);
    const double* yv = y_.val(b);
    const double* ys = y_.srt(b);
    const std::uint32_t* ypos = y_.pos(b);
    for (std::size_t p = 0; p < n; ++p) y_by_x_[p] = yv[xo[p]];
    double acc = 0.0;
    for (std::size_t p = 0; p < n; ++p) {
      std::size_t nx = 0;
      const double r = kth_distance(xs, p, nx);
      acc += psi_[nx + 1] + psi_[count_within(ys, n, ypos[xo[p]], r) + 1];
    }
    return std::max(0.0, psi_[n] + psi_[k_] - acc / double(n));
  }

 private:
  // Max-norm distance r from sample p (x-sorted position) to its k-th nearest other sample: walk
  // right, then left, in x order, each until the x gap alone reaches the k-th best so far (two
  // walks instead of one merged walk: no unpredictable choice of side per step). Every sample with
  // x gap < r lies in the walked window, so n_x is counted by trimming the window's ends.
  double kth_distance(const double* xs, std::size_t p, std::size_t& nx) {
    const std::size_t n = x_.n;
    std::fill(best_.begin(), best_.end(), std::numeric_limits<double>::infinity());
    const double xp = xs[p], yp = y_by_x_[p];
    std::size_t hi = p + 1;
    for (; hi < n && xs[hi] - xp < best_[k_ - 1]; ++hi) offer(std::max(xs[hi] - xp, std::fabs(y_by_x_[hi] - yp)));
    std::size_t lo = p;
    for (; lo > 0 && xp - xs[lo - 1] < best_[k_ - 1]; --lo) offer(std::max(xp - xs[lo - 1], std::fabs(y_by_x_[lo - 1] - yp)));
    const double r = best_[k_ - 1];
    while (lo < p && !(xp - xs[lo] < r)) ++lo;
    while (hi > p + 1 && !(xs[hi - 1] - xp < r)) --hi;
    nx = (p - lo) + (hi - p - 1);
    return r;
  }

  // Insert dist into the ascending k best distances, dropping the largest, without branches (whether
  // a candidate enters is unpredictable): best[m] becomes min(best[m], max(best[m-1], dist)).
  void offer(double dist) {
    for (std::size_t m = k_ - 1; m > 0; --m) best_[m] = std::min(best_[m], std::max(best_[m - 1], dist));
    best_[0] = std::min(best_[0], dist);
  }

  const SortedColumns &x_, &y_;
  std::size_t dx_, dy_, k_;
  const std::vector<double>& psi_;
  PairWriter<Out> write_;
  std::vector<double> y_by_x_, best_;
};

// KSG MI of every pair, every layer: x (layers x d_x variables) against itself (y null: symmetric,
// +inf on the diagonal) or against y. out is layers x d_x x d_y, nats times `scale`. Needs k < n.
template <class Out>
bool ksg_mi(const SortedColumns& x, const SortedColumns* y, std::size_t layers, int k, double scale, Out* out,
            int threads = 1, const TileMonitor& monitor = {}) {
  const bool upper = (y == nullptr);
  const SortedColumns& yy = upper ? x : *y;
  const std::size_t dx = x.cols / layers, dy = yy.cols / layers;
  const auto tiles = make_tiles(layers, dx, dy, upper, 16);
  const auto psi = digamma_table(x.n);
  const PairWriter<Out> write{out, dx, dy, upper, scale};
  return for_each_tile(tiles, threads, monitor, [&] { return KsgTileWorker<Out>(x, yy, dx, dy, k, psi, write); });
}

}  // namespace pairmi

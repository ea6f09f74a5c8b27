// All-pairs Kraskov-Stoegbauer-Grassberger MI (algorithm 1), computed as scikit-learn's
// mutual_info_regression computes it for two continuous variables: each variable scaled to unit
// variance, max-norm in the joint space, eps_i = distance to the k-th neighbour, n_x(i) and n_y(i)
// = other samples strictly closer than eps_i in each marginal, and
//     MI = psi(N) + psi(k) - <psi(n_x + 1)> - <psi(n_y + 1)>   (nats), clipped at 0.
// Neighbours are found in a window around each sample in one variable's sorted order, so a pair
// costs about N * sqrt(k N) distance evaluations rather than N^2; pairs sharing a variable walk
// together, one per vector lane.
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

// Four doubles handled together: the pairs that share one variable walk that variable's sorted order
// in step, each lane holding one pair (GCC/Clang vector extensions: two SSE2 registers on baseline
// x86-64, NEON on arm64). Four lanes keep a k=3 search in registers; a wider group walks further,
// because the group's window is the widest of its lanes'.
constexpr std::size_t kLanes = 4;
using LanePair = double __attribute__((vector_size(16)));
struct Lanes {
  LanePair h[2];
  double get(std::size_t l) const { return h[l / 2][l % 2]; }
};

inline Lanes make_lanes(double a, double b, double c, double d) { return {{LanePair{a, b}, LanePair{c, d}}}; }
inline Lanes splat(double v) { return make_lanes(v, v, v, v); }
inline LanePair min2(LanePair a, LanePair b) { return a < b ? a : b; }
inline LanePair max2(LanePair a, LanePair b) { return a > b ? a : b; }
inline Lanes lanes_min(const Lanes& a, const Lanes& b) { return {{min2(a.h[0], b.h[0]), min2(a.h[1], b.h[1])}}; }
inline Lanes lanes_max(const Lanes& a, const Lanes& b) { return {{max2(a.h[0], b.h[0]), max2(a.h[1], b.h[1])}}; }
inline double largest(const Lanes& a) {
  const LanePair m = max2(a.h[0], a.h[1]);
  return std::max(m[0], m[1]);
}
// |a - b| per lane (the sign bit cleared, as fabs does).
inline Lanes abs_diff(const Lanes& a, const Lanes& b) {
  using Bits = long long __attribute__((vector_size(16)));
  const Bits magnitude = {0x7fffffffffffffffLL, 0x7fffffffffffffffLL};
  const LanePair d0 = a.h[0] - b.h[0], d1 = a.h[1] - b.h[1];
  return {{LanePair(Bits(d0) & magnitude), LanePair(Bits(d1) & magnitude)}};
}

// Per-lane counts of gaps strictly below each lane's radius.
struct LaneCounts {
  using Half = long long __attribute__((vector_size(16)));
  Half h[2] = {};
  void add_if_below(double gap, const Lanes& r) {  // a true comparison is -1 in each lane
    h[0] -= LanePair{gap, gap} < r.h[0];
    h[1] -= LanePair{gap, gap} < r.h[1];
  }
  void add_digammas(const double* psi, double* sums) const {  // sums[l] += psi(count_l + 1)
    sums[0] += psi[h[0][0] + 1], sums[1] += psi[h[0][1] + 1], sums[2] += psi[h[1][0] + 1], sums[3] += psi[h[1][1] + 1];
  }
};

// Max-norm distance from every sample to its k-th nearest other sample, for the kLanes pairs
// (x, y_l): x's sorted values xs (sample order xo), and y_by_x[p] holding each lane's y of the
// sample at x position p. Walks outwards from each sample in x order, one step to each side per
// round, while the x gap alone is below some lane's k-th best distance; eps[l][t] receives lane
// l's distance for sample t, and sums[l] gains psi(n_x + 1) per sample, n_x counted in the walked
// window. best: k Lanes of scratch (K = k known at compile time, or 0).
template <int K>
void kth_distances(const double* xs, const std::uint32_t* xo, std::size_t n, const Lanes* y_by_x, int k,
                   Lanes* best, double* const* eps, const double* psi, double* sums) {
  const int kk = K > 0 ? K : k;
  Lanes local[K > 0 ? K : 1];
  Lanes* b = K > 0 ? local : best;
  for (std::size_t p = 0; p < n; ++p) {
    for (int m = 0; m < kk; ++m) b[m] = splat(std::numeric_limits<double>::infinity());
    const double xp = xs[p];
    const Lanes yp = y_by_x[p];
    // Insert each lane's distance into its ascending k best without branches (whether a candidate
    // enters is unpredictable): b[m] becomes min(b[m], max(b[m-1], dist)).
    auto offer = [&](double gap, const Lanes& yq) {
      const Lanes dist = lanes_max(splat(gap), abs_diff(yq, yp));
      for (int m = kk - 1; m > 0; --m) b[m] = lanes_min(b[m], lanes_max(b[m - 1], dist));
      b[0] = lanes_min(b[0], dist);
    };
    double limit = std::numeric_limits<double>::infinity();
    std::size_t hi = p + 1, lo = p;
    bool right = hi < n, left = lo > 0;
    while (right || left) {
      if (right) {
        const double gap = xs[hi] - xp;
        if (gap < limit) {
          offer(gap, y_by_x[hi]);
          right = ++hi < n;
        } else {
          right = false;
        }
      }
      if (left) {
        const double gap = xp - xs[lo - 1];
        if (gap < limit) {
          offer(gap, y_by_x[lo - 1]);
          left = --lo > 0;
        } else {
          left = false;
        }
      }
      limit = largest(b[kk - 1]);
    }
    const Lanes r = b[kk - 1];
    for (std::size_t l = 0; l < kLanes; ++l) eps[l][xo[p]] = r.get(l);
    // Every sample with x gap below r lies in the walked window [lo, hi).
    LaneCounts nx;
    for (std::size_t q = lo; q < p; ++q) nx.add_if_below(xp - xs[q], r);
    for (std::size_t q = p + 1; q < hi; ++q) nx.add_if_below(xs[q] - xp, r);
    nx.add_digammas(psi, sums);
  }
}

// Adds to sums[l] the sum over samples t of psi(c + 1), c = the other samples whose value of this
// variable (sorted values v, sample order o) is strictly within eps[l][t]. The gaps are shared by
// the lanes, so each step is one comparison per lane.
inline void add_count_digammas(const double* v, const std::uint32_t* o, std::size_t n, const double* const* eps,
                               const double* psi, double* sums) {
  for (std::size_t p = 0; p < n; ++p) {
    const std::uint32_t t = o[p];
    const Lanes r = make_lanes(eps[0][t], eps[1][t], eps[2][t], eps[3][t]);
    const double limit = largest(r), vp = v[p];
    LaneCounts c;
    for (std::size_t q = p + 1; q < n && v[q] - vp < limit; ++q) c.add_if_below(v[q] - vp, r);
    for (std::size_t q = p; q > 0 && vp - v[q - 1] < limit; --q) c.add_if_below(vp - v[q - 1], r);
    c.add_digammas(psi, sums);
  }
}

// Pairs per tile side: the tile's k-th distances (side^2 * n doubles) stay in cache for n <= 2048,
// and stay small beyond.
inline std::size_t ksg_tile_side(std::size_t n) { return n <= 2048 ? 16 : n <= 8192 ? 8 : kLanes; }

// Bytes of scratch one thread's KSG worker allocates.
inline std::size_t ksg_worker_bytes(std::size_t n, int k) {
  const std::size_t side = ksg_tile_side(n);
  return sizeof(double) * (side * side * (n + 1)) + sizeof(Lanes) * (n + std::size_t(k));
}

// One thread's KSG worker. A tile's pairs are handled in groups of kLanes twice: grouped by row
// variable x_i, a walk in x_i's order finds every pair's k-th neighbour distances and n_x; grouped
// by column variable y_j, a walk in y_j's order counts n_y against the stored distances.
template <class Out>
class KsgTileWorker {
 public:
  KsgTileWorker(const SortedColumns& x, const SortedColumns& y, std::size_t d_x, std::size_t d_y, int k,
                const std::vector<double>& psi, const PairWriter<Out>& write)
      : x_(x), y_(y), dx_(d_x), dy_(d_y), k_(k), psi_(psi), write_(write), side_(ksg_tile_side(x.n)),
        eps_(side_ * side_ * x.n), sums_(side_ * side_), y_by_x_(x.n), best_(std::size_t(k)) {}

  void operator()(const Tile& t) {
    std::fill(sums_.begin(), sums_.end(), 0.0);
    std::vector<std::size_t> group;
    for (std::size_t i = t.r0; i < t.r1; ++i) {
      group.clear();
      for (std::size_t j = t.c0; j < t.c1; ++j)
        if (needed(t, i, j)) group.push_back(j);
      for_each_group(group, [&](const std::size_t* js, std::size_t m) { row_group(t, i, js, m); });
    }
    for (std::size_t j = t.c0; j < t.c1; ++j) {
      group.clear();
      for (std::size_t i = t.r0; i < t.r1; ++i)
        if (needed(t, i, j)) group.push_back(i);
      for_each_group(group, [&](const std::size_t* is, std::size_t m) { column_group(t, j, is, m); });
    }
    write(t);
  }

 private:
  std::size_t xcol(const Tile& t, std::size_t i) const { return t.layer * dx_ + i; }
  std::size_t ycol(const Tile& t, std::size_t j) const { return t.layer * dy_ + j; }
  bool needed(const Tile& t, std::size_t i, std::size_t j) const {
    return !(write_.upper && j <= i) && !x_.constant[xcol(t, i)] && !y_.constant[ycol(t, j)];
  }
  std::size_t slot(const Tile& t, std::size_t i, std::size_t j) const { return (i - t.r0) * side_ + (j - t.c0); }
  double* eps(const Tile& t, std::size_t i, std::size_t j) { return &eps_[slot(t, i, j) * x_.n]; }

  // Calls f(members, m) for consecutive groups of kLanes members; a short last group is padded by
  // repeating its last member (m counts the real ones).
  template <class F>
  static void for_each_group(const std::vector<std::size_t>& members, F f) {
    for (std::size_t g = 0; g < members.size(); g += kLanes) {
      std::size_t lanes[kLanes];
      const std::size_t m = std::min(kLanes, members.size() - g);
      for (std::size_t l = 0; l < kLanes; ++l) lanes[l] = members[g + std::min(l, m - 1)];
      f(lanes, m);
    }
  }

  void row_group(const Tile& t, std::size_t i, const std::size_t* js, std::size_t m) {
    const std::size_t n = x_.n, a = xcol(t, i);
    const std::uint32_t* xo = x_.ord(a);
    double* e[kLanes];
    const double* y[kLanes];
    for (std::size_t l = 0; l < kLanes; ++l) {
      e[l] = eps(t, i, js[l]);
      y[l] = y_.val(ycol(t, js[l]));
    }
    for (std::size_t p = 0; p < n; ++p) {
      const std::uint32_t s = xo[p];
      y_by_x_[p] = make_lanes(y[0][s], y[1][s], y[2][s], y[3][s]);
    }
    double s[kLanes] = {};
    if (k_ == 3)
      kth_distances<3>(x_.srt(a), xo, n, y_by_x_.data(), k_, best_.data(), e, psi_.data(), s);
    else
      kth_distances<0>(x_.srt(a), xo, n, y_by_x_.data(), k_, best_.data(), e, psi_.data(), s);
    for (std::size_t l = 0; l < m; ++l) sums_[slot(t, i, js[l])] += s[l];
  }

  void column_group(const Tile& t, std::size_t j, const std::size_t* is, std::size_t m) {
    const std::size_t b = ycol(t, j);
    const double* e[kLanes];
    for (std::size_t l = 0; l < kLanes; ++l) e[l] = eps(t, is[l], j);
    double s[kLanes] = {};
    add_count_digammas(y_.srt(b), y_.ord(b), y_.n, e, psi_.data(), s);
    for (std::size_t l = 0; l < m; ++l) sums_[slot(t, is[l], j)] += s[l];
  }

  void write(const Tile& t) {
    const std::size_t n = x_.n;
    for (std::size_t i = t.r0; i < t.r1; ++i)
      for (std::size_t j = std::max(t.c0, write_.upper ? i : 0); j < t.c1; ++j) {
        double nats = 0.0;  // a constant variable shares nothing
        if (write_.upper && i == j)
          nats = std::numeric_limits<double>::infinity();  // a continuous variable with itself
        else if (needed(t, i, j))
          nats = std::max(0.0, psi_[n] + psi_[std::size_t(k_)] - sums_[slot(t, i, j)] / double(n));
        write_(t, i, j, nats);
      }
  }

  const SortedColumns &x_, &y_;
  std::size_t dx_, dy_;
  int k_;
  const std::vector<double>& psi_;
  PairWriter<Out> write_;
  std::size_t side_;
  std::vector<double> eps_, sums_;  // per tile pair: k-th distances by sample; digamma sums
  std::vector<Lanes> y_by_x_, best_;
};

// KSG MI of every pair, every layer: x (layers x d_x variables) against itself (y null: symmetric,
// +inf on the diagonal) or against y. out is layers x d_x x d_y, nats times `scale`. Needs k < n.
template <class Out>
bool ksg_mi(const SortedColumns& x, const SortedColumns* y, std::size_t layers, int k, double scale, Out* out,
            int threads = 1, const TileMonitor& monitor = {}) {
  const bool upper = (y == nullptr);
  const SortedColumns& yy = upper ? x : *y;
  const std::size_t dx = x.cols / layers, dy = yy.cols / layers;
  const auto tiles = make_tiles(layers, dx, dy, upper, ksg_tile_side(x.n));
  const auto psi = digamma_table(x.n);
  const PairWriter<Out> write{out, dx, dy, upper, scale};
  return for_each_tile(tiles, threads, monitor, [&] { return KsgTileWorker<Out>(x, yy, dx, dy, k, psi, write); });
}

}  // namespace pairmi

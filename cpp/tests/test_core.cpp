// C++ unit tests of the core, independent of Python: edges, codes, entropies and all-pairs MI
// against a direct computation with std::log; KSG against an all-distances computation.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pairmi/accumulate.hpp"
#include "pairmi/binned_mi.hpp"
#include "pairmi/ksg.hpp"
#include "pairmi/bin_layers.hpp"
#include "pairmi/pair_list.hpp"

namespace {

int failures = 0;

void check(bool ok, const char* what, int line) {
  if (!ok) {
    std::printf("FAIL line %d: %s\n", line, what);
    ++failures;
  }
}
#define CHECK(cond) check((cond), #cond, __LINE__)

bool near(double a, double b, double tol = 1e-12) { return std::fabs(a - b) <= tol; }

void test_equal_width_edges() {
  double e[4];
  pairmi::equal_width_edges(0.0, 3.0, 3, e);
  CHECK(e[0] == 0.0 && e[1] == 1.0 && e[2] == 2.0 && e[3] == 3.0);
  pairmi::equal_width_edges(5.0, 5.0, 2, e);  // constant: numpy's [v - 0.5, v + 0.5]
  CHECK(e[0] == 4.5 && e[1] == 5.0 && e[2] == 5.5);
}

void test_codes_follow_numpy_rules() {
  const double edges[] = {0.0, 1.0, 1.0, 2.0, 3.0};  // 4 bins, a repeated edge
  const double v[] = {0.0, 0.5, 1.0, 1.5, 2.0, 2.999, 3.0};
  std::uint8_t codes[7];
  pairmi::codes_from_edges(v, 7, edges, 4, codes);
  // searchsorted(side='right') - 1; the value on the last edge goes to the last bin; bin 1 is empty.
  const std::uint8_t want[] = {0, 0, 2, 2, 3, 3, 3};
  for (int t = 0; t < 7; ++t) CHECK(codes[t] == want[t]);
  // Tied lowest edges (fixed edges of ReLU zeros): values below the range join the minimum's bin
  // (bin 1, where 0 falls), as values above it join the last bin.
  const double tied[] = {0.0, 0.0, 1.0, 2.0};
  const double w[] = {-1.0, 0.0, 0.5, 1.0, 2.0, 5.0};
  pairmi::codes_from_edges(w, 6, tied, 3, codes);
  const std::uint8_t want_tied[] = {1, 1, 1, 2, 2, 2};
  for (int t = 0; t < 6; ++t) CHECK(codes[t] == want_tied[t]);
}

double entropy_direct(const std::vector<int>& counts, std::size_t n, bool miller_madow = false) {
  double h = 0;
  int filled = 0;
  for (int c : counts)
    if (c > 0) h -= double(c) / n * std::log(double(c) / n), ++filled;
  return miller_madow ? h + (filled - 1) / (2.0 * n) : h;
}

// All-pairs MI of random codes against per-pair histograms and std::log, for n hitting both
// few-sample kernels and the four-byte counters; results must not depend on the thread count or on
// the rank kernel's lanes (16 here, against the widest the CPU runs).
void test_binned_mi(std::size_t n, std::size_t d, int bins) {
  std::mt19937 rng(static_cast<unsigned>(n * 31 + d));
  std::vector<std::uint8_t> codes(d * n);
  for (std::size_t c = 0; c < d; ++c)
    for (std::size_t t = 0; t < n; ++t) {
      const int v = c % 3 == 0 ? int(rng() % bins) : int(rng() % 3) * (bins / 3);  // dense and sparse
      codes[c * n + t] = static_cast<std::uint8_t>(c == 5 ? codes[t] : v);         // a dependent pair
    }
  std::vector<double> h(d);
  pairmi::column_entropies(codes.data(), d, n, bins, h.data(), 2);
  std::vector<double> out(d * d), out1(d * d);
  const pairmi::CodedLayers x{codes.data(), h.data(), d};
  CHECK(pairmi::binned_mi(x, nullptr, 1, n, bins, 1.0, out.data(), 3));
  pairmi::binned_mi(x, nullptr, 1, n, bins, 1.0, out1.data(), 1, {}, false, 16);
  CHECK(out == out1);
  for (std::size_t i = 0; i < d; ++i) {
    std::vector<int> ci(bins, 0);
    for (std::size_t t = 0; t < n; ++t) ++ci[codes[i * n + t]];
    CHECK(near(h[i], entropy_direct(ci, n)));
    for (std::size_t j = 0; j < d; ++j) {
      std::vector<int> cj(bins, 0), cij(bins * bins, 0);
      for (std::size_t t = 0; t < n; ++t) {
        ++cj[codes[j * n + t]];
        ++cij[codes[i * n + t] * bins + codes[j * n + t]];
      }
      const double mi = entropy_direct(ci, n) + entropy_direct(cj, n) - entropy_direct(cij, n);
      CHECK(near(out[i * d + j], std::max(0.0, mi), 1e-11));
    }
  }
  CHECK(near(out[0 * d + 5], h[0], 1e-11));  // a copy shares all its information
}

void test_cross_and_layers() {
  const std::size_t n = 50, layers = 2, dx = 3, dy = 5;
  const int bins = 4;
  std::mt19937 rng(7);
  std::vector<std::uint8_t> cx(layers * dx * n), cy(layers * dy * n);
  for (auto& v : cx) v = static_cast<std::uint8_t>(rng() % bins);
  for (auto& v : cy) v = static_cast<std::uint8_t>(rng() % bins);
  std::vector<double> hx(layers * dx), hy(layers * dy);
  pairmi::column_entropies(cx.data(), layers * dx, n, bins, hx.data());
  pairmi::column_entropies(cy.data(), layers * dy, n, bins, hy.data());
  std::vector<float> out(layers * dx * dy);
  const pairmi::CodedLayers x{cx.data(), hx.data(), dx}, y{cy.data(), hy.data(), dy};
  pairmi::binned_mi(x, &y, layers, n, bins, 1.0 / std::log(2.0), out.data(), 2);
  // Layer 1's pair (2, 4) against a direct count, in bits.
  std::vector<int> a(bins, 0), b(bins, 0), ab(bins * bins, 0);
  for (std::size_t t = 0; t < n; ++t) {
    const int u = cx[(dx + 2) * n + t], v = cy[(dy + 4) * n + t];
    ++a[u], ++b[v], ++ab[u * bins + v];
  }
  const double mi = (entropy_direct(a, n) + entropy_direct(b, n) - entropy_direct(ab, n)) / std::log(2.0);
  CHECK(near(out[dx * dy + 2 * dy + 4], mi, 1e-6));
}

// X against Y with variables of very different ranking costs on both sides (two, five or fifteen
// codes used), so that some tiles run with x's variables as rows and some, transposed, with y's;
// rows with two codes take the counting kernel, and cells of more than 16 samples make the rank
// kernel sum ranks one by one. Every pair against a direct count, plug-in and Miller-Madow (where
// rank 0 weighs too).
void test_cross_orientations(bool miller_madow) {
  const std::size_t n = 90, layers = 2, dx = 150, dy = 130;
  const int bins = 15;
  std::mt19937 rng(11);
  auto make = [&](std::size_t d, std::size_t period) {
    std::vector<std::uint8_t> codes(layers * d * n);
    for (std::size_t v = 0; v < layers * d; ++v) {
      const int used = v % period == 0 ? 2 : v % period == 1 ? 5 : bins;
      for (std::size_t t = 0; t < n; ++t) codes[v * n + t] = static_cast<std::uint8_t>(rng() % used);
    }
    return codes;
  };
  const auto cx = make(dx, 4), cy = make(dy, 3);
  std::vector<double> hx(layers * dx), hy(layers * dy);
  pairmi::column_entropies(cx.data(), layers * dx, n, bins, hx.data(), 1, miller_madow);
  pairmi::column_entropies(cy.data(), layers * dy, n, bins, hy.data(), 1, miller_madow);
  const pairmi::CodedLayers x{cx.data(), hx.data(), dx}, y{cy.data(), hy.data(), dy};
  std::vector<double> out(layers * dx * dy), out1(layers * dx * dy);
  pairmi::binned_mi(x, &y, layers, n, bins, 1.0, out.data(), 3, {}, miller_madow);
  pairmi::binned_mi(x, &y, layers, n, bins, 1.0, out1.data(), 1, {}, miller_madow);
  CHECK(out == out1);
  int wrong = 0;
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t i = 0; i < dx; ++i)
      for (std::size_t j = 0; j < dy; ++j) {
        std::vector<int> a(bins, 0), b(bins, 0), ab(bins * bins, 0);
        for (std::size_t t = 0; t < n; ++t) {
          const int u = cx[(l * dx + i) * n + t], v = cy[(l * dy + j) * n + t];
          ++a[u], ++b[v], ++ab[u * bins + v];
        }
        const double mi = entropy_direct(a, n, miller_madow) + entropy_direct(b, n, miller_madow) -
                          entropy_direct(ab, n, miller_madow);
        wrong += !near(out[(l * dx + i) * dy + j], miller_madow ? mi : std::max(0.0, mi), 1e-11);
      }
  CHECK(wrong == 0);
}

void test_monitor_stops_run() {
  const std::size_t n = 20, d = 300;
  std::vector<std::uint8_t> codes(d * n, 0);
  std::vector<double> h(d, 0.0), out(d * d, -1.0);
  const pairmi::CodedLayers x{codes.data(), h.data(), d};
  int calls = 0;
  const bool done =
      pairmi::binned_mi(x, nullptr, 1, n, 2, 1.0, out.data(), 1, [&](std::size_t, std::size_t) { return ++calls < 2; });
  CHECK(!done && calls == 2);
  CHECK(out[(d - 1) * d + d - 1] == -1.0);  // the last tile was never computed
}

// Threads in the current parallel region.
int omp_threads() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// The monitor's last call reports every tile done, even when the calling thread (the one that
// calls it) finished its only tile before the others finished theirs.
void test_monitor_reports_the_end() {
  const std::vector<pairmi::Tile> tiles(8, pairmi::Tile{0, 0, 1, 0, 1});
  std::atomic<int> others_done{0};
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  const bool done = pairmi::for_each_tile(
      tiles, 2, [&](std::size_t k, std::size_t total) { return calls.emplace_back(k, total), true; },
      [&] {
        return [&](const pairmi::Tile&) {
          if (pairmi::thread_index() != 0) return void(++others_done);
          // Thread 0 holds its first tile until the other thread has taken the rest (or 2 s pass).
          for (int spin = 0; spin < 2000 && others_done < 7 && omp_threads() > 1; ++spin)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        };
      });
  CHECK(done && !calls.empty() && calls.back() == std::make_pair(std::size_t{8}, std::size_t{8}));
  CHECK(std::count(calls.begin(), calls.end(), calls.back()) == 1);  // reported once
}

// KSG asks the monitor inside one long pair (every kKsgPollEvery samples), and a refusal stops it.
void test_ksg_monitor_inside_a_pair() {
  const std::size_t n = 3 * pairmi::kKsgPollEvery;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> g;
  std::vector<double> x(2 * n);
  for (auto& v : x) v = g(rng);
  const auto sx = pairmi::sort_columns(x.data(), 1, n, 2);
  std::vector<double> out(4, -1.0);
  std::vector<std::size_t> seen;
  const bool done = pairmi::ksg_mi(sx, nullptr, 1, 3, 1.0, out.data(), 1, [&](std::size_t k, std::size_t total) {
    seen.push_back(k * 100 + total);
    return false;
  });
  CHECK(!done && seen.size() == 1 && seen[0] == 1);  // asked with 0 of 1 tile done, inside the pair
}

// No layers: nothing to do, and no division by the layer count.
void test_ksg_no_layers() {
  const pairmi::SortedColumns none = pairmi::sort_columns(static_cast<const double*>(nullptr), 0, 5, 3);
  double out = -1.0;
  CHECK(pairmi::ksg_mi(none, nullptr, 0, 3, 1.0, &out) && out == -1.0);
}

// Unit-variance scaling at magnitudes whose squares over- or underflow: the same scaled values,
// up to rounding, as at magnitude 1.
// What SortedColumns::bytes tells a caller's memory check is what sort_columns allocates.
void test_sorted_columns_bytes() {
  for (const std::size_t n : {2, 90, 1000}) {
    std::vector<double> x(2 * n * 3);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = double((i * 7919) % 101);
    const auto s = pairmi::sort_columns(x.data(), 2, n, 3, 1);
    const std::size_t held = s.value.size() * sizeof(double) + s.sorted.size() * sizeof(double) +
                             s.sorted32.size() * sizeof(float) + s.order.size() * sizeof(std::uint32_t) +
                             s.position.size() * sizeof(std::uint32_t) + s.constant.size();
    CHECK(pairmi::SortedColumns::bytes(6, n) == held);
  }
}

void test_ksg_scaling_extreme_magnitudes() {
  const std::size_t n = 50;
  std::mt19937_64 rng(6);
  std::normal_distribution<double> g;
  std::vector<double> x(n);
  for (auto& v : x) v = g(rng);
  const auto plain = pairmi::sort_columns(x.data(), 1, n, 1);
  for (const double factor : {1e160, 1e-160, 1e300, 1e-300}) {
    std::vector<double> scaled(x);
    for (auto& v : scaled) v *= factor;
    const auto s = pairmi::sort_columns(scaled.data(), 1, n, 1);
    bool same = !s.constant[0];
    for (std::size_t t = 0; t < n; ++t) same = same && near(s.value[t], plain.value[t], 1e-13);
    CHECK(same);
  }
  std::vector<double> constant(n, 1e-300);
  CHECK(pairmi::population_sd(constant.data(), n) == 0.0);
}

// Streamed counts: any split into chunks gives the same totals as direct counting, and MI from the
// totals equals binned_mi on all the samples (bit for bit when both sum the cells in order, n > 4 b^2).
void test_accumulated_counts(bool cross) {
  const std::size_t layers = 2, dx = 9, dy = cross ? 5 : 9, n = 1000;
  const int bins = 6;
  std::mt19937_64 rng(7);
  std::vector<std::uint8_t> cx(layers * dx * n), cy(layers * dy * n);
  for (auto& c : cx) c = std::uint8_t(rng() % bins);
  for (auto& c : cy) c = std::uint8_t(rng() % bins);
  const pairmi::PairSlots slots{dx, dy, !cross};
  const std::size_t cells = std::size_t(bins * bins);
  std::vector<std::uint64_t> counts(layers * slots.count() * cells, 0), mx(layers * dx * bins, 0),
      my(layers * dy * bins, 0);
  // Chunks of 1, 299 and 700 samples: each chunk's codes laid out (layers, d, chunk).
  std::size_t t0 = 0;
  for (const std::size_t size : {std::size_t{1}, std::size_t{299}, std::size_t{700}}) {
    std::vector<std::uint8_t> px(layers * dx * size), py(layers * dy * size);
    for (std::size_t v = 0; v < layers * dx; ++v) std::copy_n(&cx[v * n + t0], size, &px[v * size]);
    for (std::size_t v = 0; v < layers * dy; ++v) std::copy_n(&cy[v * n + t0], size, &py[v * size]);
    pairmi::add_pair_counts(px.data(), dx, cross ? py.data() : nullptr, dy, layers, size, bins, counts.data(),
                            mx.data(), cross ? my.data() : nullptr, 2);
    t0 += size;
  }
  const std::uint8_t* yy = cross ? cy.data() : cx.data();
  std::size_t wrong = 0;
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t i = 0; i < dx; ++i)
      for (std::size_t j = cross ? 0 : i + 1; j < dy; ++j) {
        std::vector<std::uint64_t> direct(cells, 0);
        for (std::size_t t = 0; t < n; ++t) ++direct[cx[(l * dx + i) * n + t] * bins + yy[(l * dy + j) * n + t]];
        wrong += !std::equal(direct.begin(), direct.end(), &counts[(l * slots.count() + slots(i, j)) * cells]);
      }
  CHECK(wrong == 0);
  std::vector<double> hx(layers * dx), hy(layers * dy), want(layers * dx * dy), got(layers * dx * dy);
  pairmi::column_entropies(cx.data(), layers * dx, n, bins, hx.data());
  pairmi::column_entropies(cy.data(), layers * dy, n, bins, hy.data());
  const pairmi::CodedLayers x{cx.data(), hx.data(), dx}, y{cy.data(), hy.data(), dy};
  pairmi::binned_mi(x, cross ? &y : nullptr, layers, n, bins, 1.0, want.data());
  pairmi::mi_from_counts(counts.data(), mx.data(), cross ? my.data() : nullptr, layers, dx, dy, bins, n, false, 1.0,
                         got.data(), 2);
  std::size_t off = 0;
  for (std::size_t k = 0; k < got.size(); ++k) off += !near(got[k], want[k], 1e-13);
  CHECK(off == 0);
}

void test_bin_layers_matches_edges() {
  const std::size_t layers = 2, n = 33, d = 70;
  const int bins = 7;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> x(layers * n * d);
  for (auto& v : x) v = nd(rng);
  std::vector<double> edges(layers * d * (bins + 1));
  std::vector<std::uint8_t> codes(layers * d * n);
  pairmi::equal_width_layer_edges(x.data(), layers, n, d, bins, edges.data(), 2);
  pairmi::bin_layers(x.data(), layers, n, d, edges.data(), bins, codes.data(), 2);
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t c = 0; c < d; ++c)
      for (std::size_t t = 0; t < n; ++t) {
        const double v = x[(l * n + t) * d + c];
        const double* e = &edges[(l * d + c) * (bins + 1)];
        const int code = codes[(l * d + c) * n + t];
        CHECK(e[code] <= v && (v < e[code + 1] || (code == bins - 1 && v == e[bins])));
      }
}

// KSG of one pair from all N^2 distances: eps = k-th smallest max-norm distance to the others,
// n_x and n_y = others strictly within eps; x and y already at unit variance.
double ksg_direct(const std::vector<double>& x, const std::vector<double>& y, int k) {
  const std::size_t n = x.size();
  const auto psi = pairmi::digamma_table(n);
  double acc = 0;
  for (std::size_t p = 0; p < n; ++p) {
    std::vector<double> dist;
    for (std::size_t q = 0; q < n; ++q)
      if (q != p) dist.push_back(std::max(std::fabs(x[q] - x[p]), std::fabs(y[q] - y[p])));
    std::nth_element(dist.begin(), dist.begin() + (k - 1), dist.end());
    const double eps = dist[std::size_t(k - 1)];
    std::size_t nx = 0, ny = 0;
    for (std::size_t q = 0; q < n; ++q)
      if (q != p) nx += std::fabs(x[q] - x[p]) < eps, ny += std::fabs(y[q] - y[p]) < eps;
    acc += psi[nx + 1] + psi[ny + 1];
  }
  return std::max(0.0, psi[n] + psi[std::size_t(k)] - acc / double(n));
}

// Column c of a row-major (n, d) block, scaled to unit (population) variance as the core does.
std::vector<double> scaled_column(const std::vector<double>& m, std::size_t n, std::size_t d, std::size_t c) {
  std::vector<double> v(n);
  double mean = 0, var = 0;
  for (std::size_t t = 0; t < n; ++t) mean += v[t] = m[t * d + c];
  mean /= double(n);
  for (double u : v) var += (u - mean) * (u - mean);
  const double sd = std::sqrt(var / double(n));
  if (sd > 0)
    for (double& u : v) u /= sd;
  return v;
}

// How test_ksg's values are drawn: normal; rounded to quarters (exact ties); quarters plus noise
// at float32's resolution (near ties: the float32 walks must hand those samples to float64);
// an offset of 1e12 (float64 distances coarse, so wide bands: most samples in float64); quarters
// whose zeros become draws of size 1e-39 (below float32's normal range, around the median);
// normal, with the first sample of every odd column 40 further (its distances span every sample).
enum class KsgValues { plain, ties, near_ties, offset, tiny, outlier };

// All pairs (square: +inf diagonal; cross with layers) against ksg_direct, with a constant column
// and a dependent pair; identical for 1 and 2 threads and for four and the widest lanes.
void test_ksg(std::size_t layers, std::size_t n, std::size_t dx, std::size_t dy, int k,
              KsgValues values = KsgValues::plain) {
  std::mt19937 rng(static_cast<unsigned>(n * 7 + dx + k));
  std::normal_distribution<double> nd;
  const auto value = [&](double v) {
    switch (values) {
      case KsgValues::ties:
        return std::round(4 * v) / 4;
      case KsgValues::near_ties:
        return std::round(4 * v) / 4 + 3e-8 * nd(rng);
      case KsgValues::offset:
        return 1e12 + v;
      case KsgValues::tiny:
        return std::round(4 * v) == 0 ? 1e-39 * nd(rng) : std::round(4 * v) / 4;
      default:
        return v;
    }
  };
  auto draw = [&](std::size_t d) {
    std::vector<double> m(layers * n * d);
    for (std::size_t i = 0; i < m.size(); ++i) {
      const double v = (i % d == 1) ? m[i - 1] + 0.3 * nd(rng) : nd(rng);  // column 1 depends on 0
      m[i] = (i % d == 2) ? 1.5 : value(v);                                // column 2 constant
      if (values == KsgValues::outlier && i / d % n == 0 && i % d % 2 == 1) m[i] += 40;
    }
    return m;
  };
  const bool square = dy == 0;
  const auto mx = draw(dx), my = square ? mx : draw(dy);
  const std::size_t d2 = square ? dx : dy;
  const auto sx = pairmi::sort_columns(mx.data(), layers, n, dx, 2);
  const auto sy = pairmi::sort_columns(my.data(), layers, n, d2, 2);
  std::vector<double> one(layers * dx * d2), two(layers * dx * d2), narrow(layers * dx * d2);
  pairmi::ksg_mi(sx, square ? nullptr : &sy, layers, k, 1.0, one.data(), 1);
  pairmi::ksg_mi(sx, square ? nullptr : &sy, layers, k, 1.0, two.data(), 2);
  pairmi::ksg_mi(sx, square ? nullptr : &sy, layers, k, 1.0, narrow.data(), 2, {}, 4);
  CHECK(one == two);
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t i = 0; i < dx; ++i)
      for (std::size_t j = 0; j < d2; ++j) {
        const double got = one[(l * dx + i) * d2 + j];
        if (square && i == j) {
          CHECK(std::isinf(got));
          continue;
        }
        const auto x =
            scaled_column(std::vector<double>(mx.begin() + l * n * dx, mx.begin() + (l + 1) * n * dx), n, dx, i);
        const auto y =
            scaled_column(std::vector<double>(my.begin() + l * n * d2, my.begin() + (l + 1) * n * d2), n, d2, j);
        const bool constant = i == 2 || (j == 2 && d2 > 2);
        CHECK(near(got, constant ? 0.0 : ksg_direct(x, y, k), 1e-12));
        CHECK(near(narrow[(l * dx + i) * d2 + j], got, 1e-12));  // four lanes against the widest
      }
}

// A column holding +0 and then -0 at its median, the two samples with the same y (at distance 0
// for k = 1). The walks order distances by their bit patterns; had the float32 values kept the
// -0, the gap (-0) - (+0) = -0 would have counted as closer than eps - band < 0.
void test_ksg_signed_zeros() {
  const std::size_t n = 90;
  std::mt19937 rng(5);
  std::normal_distribution<double> nd;
  std::vector<double> m(n * 2);
  for (std::size_t t = 0; t < n; ++t) {
    m[2 * t] = t < n / 2 ? -1 - std::fabs(nd(rng)) : 1 + std::fabs(nd(rng));
    m[2 * t + 1] = nd(rng);
  }
  m[n] = 0.0;  // sample n / 2, then sample n / 2 + 1: sorted in that order, the median +0
  m[n + 2] = -0.0;
  m[n + 3] = m[n + 1];
  const auto s = pairmi::sort_columns(m.data(), 1, n, 2, 1);
  const auto x = scaled_column(m, n, 2, 0), y = scaled_column(m, n, 2, 1);
  for (const int k : {1, 3}) {
    std::vector<double> out(4);
    pairmi::ksg_mi(s, nullptr, 1, k, 1.0, out.data(), 1);
    CHECK(near(out[1], ksg_direct(x, y, k), 1e-12));
  }
}

#ifdef PAIRMI_KSG_AVX2
// With Search (the counts by binary search, the tails' samples walking the column variable's
// order), the k-th distances, bands and counts equal those of walks sample by sample (the results
// alone would not show a wrong `near`: any value other than 1 sends a sample to float64).
void test_ksg_counts_by_search(std::size_t n, KsgValues values) {
  if (!__builtin_cpu_supports("avx2")) return;
  std::mt19937 rng(static_cast<unsigned>(n));
  std::normal_distribution<double> nd;
  std::vector<double> m(n * 2);
  for (std::size_t t = 0; t < n; ++t) {
    m[2 * t] = values == KsgValues::ties ? std::round(4 * nd(rng)) / 4 : nd(rng);
    m[2 * t + 1] = (values == KsgValues::outlier && t == 0 ? 40 : 0) + m[2 * t] + nd(rng);
  }
  const auto s = pairmi::sort_columns(m.data(), 1, n, 2, 1);
  const pairmi::KsgPair pair = pairmi::ksg_pair(s, 0, s, 1);
  const auto psi = pairmi::digamma_table(n);
  pairmi::KsgScratch walked(n, 3), searched(n, 3);
  const double a = pairmi::ksg_pair_sum_avx2(pair, n, 3, psi.data(), walked);
  const double b = pairmi::ksg_pair_sum_search_avx2(pair, n, 3, psi.data(), searched);
  CHECK(a == b);
  CHECK(walked.eps == searched.eps && walked.band == searched.band);  // tails walked the other order
  CHECK(walked.nx == searched.nx && walked.near_x == searched.near_x);
  CHECK(walked.ny == searched.ny && walked.near_y == searched.near_y);
  // Each sample's bands hold its k-th neighbour's distance: ksg_pair_sum takes near counts adding
  // up to n to mean that they hold nothing else.
  for (std::size_t p = 0; p < n; ++p) CHECK(walked.near_x[p] + walked.near_y[pair.ypos[pair.xo[p]]] >= 1);
}
#endif

}  // namespace

// Named groups of cases: `test_core NAME` runs one (ctest lists each), `test_core` runs all,
// `test_core --list` prints the names.

// Listed pairs (unsorted, repeated first variables, across a run boundary of 64) counted in chunks
// equal the dense accumulator's counts of the same pairs, and their MI equals mi_from_counts'; a
// stopped call leaves the counts as they were.
void test_pair_list_counts() {
  const std::size_t d = 12, n = 1003;
  const int bins = 5;
  std::mt19937_64 rng(11);
  std::vector<std::uint8_t> codes(d * n);
  for (auto& c : codes) c = std::uint8_t(rng() % bins);
  for (std::size_t s = 0; s < n; ++s) codes[3 * n + s] = std::uint8_t((codes[s] + (rng() % 3 == 0)) % bins);
  std::vector<std::uint32_t> first, second;
  for (std::uint32_t i = 0; i < d; ++i)
    for (std::uint32_t j = 0; j < d; ++j)
      if (i != j && (i * 7 + j) % 3 != 0) first.push_back(i), second.push_back(j);
  for (int k = 0; k < 70; ++k) first.push_back(5), second.push_back(std::uint32_t(k % d));  // a long run, i = j too
  first.push_back(0), second.push_back(3);
  const std::size_t pairs = first.size(), cells = std::size_t(bins * bins);
  std::vector<std::uint64_t> counts(pairs * cells, 0);
  std::size_t t0 = 0;
  for (const std::size_t size : {std::size_t{3}, std::size_t{500}, std::size_t{500}}) {
    std::vector<std::uint8_t> chunk(d * size);
    for (std::size_t v = 0; v < d; ++v) std::copy_n(&codes[v * n + t0], size, &chunk[v * size]);
    CHECK(pairmi::add_pair_list_counts(chunk.data(), size, first.data(), second.data(), pairs, bins, counts.data(), 2));
    t0 += size;
  }
  std::size_t wrong = 0;
  for (std::size_t p = 0; p < pairs; ++p) {
    std::vector<std::uint64_t> direct(cells, 0);
    for (std::size_t t = 0; t < n; ++t) ++direct[codes[first[p] * n + t] * bins + codes[second[p] * n + t]];
    wrong += !std::equal(direct.begin(), direct.end(), &counts[p * cells]);
  }
  CHECK(wrong == 0);
  // MI against the dense accumulator over all pairs (i < j) of the same codes.
  const pairmi::PairSlots slots{d, d, true};
  std::vector<std::uint64_t> dense(slots.count() * cells, 0), marginal(d * bins, 0);
  pairmi::add_pair_counts(codes.data(), d, nullptr, d, 1, n, bins, dense.data(), marginal.data(), nullptr, 1);
  std::vector<double> want(d * d), got(pairs);
  for (const bool mm : {false, true}) {
    pairmi::mi_from_counts(dense.data(), marginal.data(), nullptr, 1, d, d, bins, n, mm, 1.0, want.data(), 1);
    pairmi::mi_from_pair_list_counts(counts.data(), pairs, bins, n, mm, 1.0, got.data(), 2);
    std::size_t off = 0;
    for (std::size_t p = 0; p < pairs; ++p)
      if (first[p] < second[p])  // bit-identical; a transposed histogram sums its cells in another order
        off += got[p] != want[first[p] * d + second[p]];
      else if (first[p] > second[p])
        off += !near(got[p], want[first[p] * d + second[p]], 1e-13);
    CHECK(off == 0);
  }
  CHECK(got[pairs - 1] > 0.1);  // the dependent pair (0, 3)
  // Stopped after the first run: nothing changes.
  const auto before = counts;
  std::size_t calls = 0;
  const pairmi::TileMonitor stop = [&](std::size_t, std::size_t) { return ++calls < 2; };
  CHECK(
      !pairmi::add_pair_list_counts(codes.data(), n, first.data(), second.data(), pairs, bins, counts.data(), 1, stop));
  CHECK(counts == before);
}

const std::vector<std::pair<const char*, void (*)()>> kCases = {
    {"edges", [] { test_equal_width_edges(); }},
    {"pair_list", [] { test_pair_list_counts(); }},
    {"codes", [] { test_codes_follow_numpy_rules(); }},
    {"binned",
     [] {
       test_binned_mi(90, 13, 15);
       test_binned_mi(90, 40, 15);   // rows on both kernels; three 16-column blocks across the diagonal
       test_binned_mi(90, 100, 15);  // tiles of 16 whole rows, all reading the column blocks laid out once
       test_binned_mi(700, 9, 6);
       test_binned_mi(1003, 10, 5);  // counts four samples per load, then a tail of three
       test_binned_mi(70000, 6, 4);
       test_binned_mi(40, 7, 64);
       test_binned_mi(300, 6, 20);  // sums while counting, with four-byte counts
     }},
    {"cross",
     [] {
       test_cross_and_layers();
       test_cross_orientations(false);
       test_cross_orientations(true);
     }},
    {"monitor",
     [] {
       test_monitor_stops_run();
       test_monitor_reports_the_end();
     }},
    {"layer_binning", [] { test_bin_layers_matches_edges(); }},
    {"ksg",
     [] {
       test_ksg(1, 90, 23, 0, 3);                    // full and partial tiles; the last lane block repeats samples
       test_ksg(1, 2, 4, 0, 1);                      // fewer samples than four lanes: float64 throughout
       test_ksg(1, 3, 4, 0, 2, KsgValues::ties);     // k = n - 1
       test_ksg(1, 4, 6, 0, 3);                      // k = n - 1, one block of four lanes
       test_ksg(1, 5, 6, 3, 2);                      // cross, one sample past a block of four
       test_ksg(1, 9, 6, 3, 2);                      // cross, blocks of eight overlapping on seven lanes
       test_ksg(2, 60, 5, 9, 1, KsgValues::ties);    // cross, layers, ties
       test_ksg(1, 300, 7, 0, 5, KsgValues::ties);   // k other than 3
       test_ksg(1, 200, 6, 0, 20, KsgValues::ties);  // k larger than a chunk of neighbours
       test_ksg(1, 2100, 5, 0, 3);                   // walks of many chunks, the smaller tiles for long inputs
       test_ksg(1, 500, 6, 0, 3, KsgValues::near_ties);
       test_ksg(1, 300, 6, 0, 3, KsgValues::offset);
       test_ksg(1, 300, 6, 0, 3, KsgValues::tiny);
     }},
    {"ksg_signed_zeros", [] { test_ksg_signed_zeros(); }},
    {"accumulate",
     [] {
       test_accumulated_counts(false);
       test_accumulated_counts(true);
     }},
    {"ksg_monitor", [] { test_ksg_monitor_inside_a_pair(); }},
    {"ksg_no_layers", [] { test_ksg_no_layers(); }},
    {"ksg_scaling", [] { test_ksg_scaling_extreme_magnitudes(); }},
    {"ksg_bytes", [] { test_sorted_columns_bytes(); }},
    {"ksg_long",
     [] {
       // From 384 samples the AVX2 kernel counts by binary search, and the samples in the column
       // variable's tails walk its order: against walks (four lanes) and direct
       test_ksg(1, 400, 5, 4, 2, KsgValues::ties);       // cross; tails of two blocks
       test_ksg(1, 531, 5, 4, 3, KsgValues::near_ties);  // cross; the last blocks of three overlap
       test_ksg(1, 600, 6, 0, 5, KsgValues::ties);       // many distances within a band
       test_ksg(1, 600, 6, 0, 3, KsgValues::offset);
       test_ksg(1, 600, 6, 0, 3, KsgValues::tiny);
       test_ksg(1, 1100, 6, 0, 3, KsgValues::outlier);  // counts of all the other samples
#ifdef PAIRMI_KSG_AVX2
       for (const auto values : {KsgValues::plain, KsgValues::ties, KsgValues::outlier})
         for (const std::size_t n : {8, 9, 90, 170, 531, 1100}) test_ksg_counts_by_search(n, values);
#endif
     }},
};

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--list") {
    for (const auto& [name, run] : kCases) std::printf("%s\n", name);
    return EXIT_SUCCESS;
  }
  bool found = argc == 1;
  for (const auto& [name, run] : kCases)
    if (argc == 1 || std::string(argv[1]) == name) {
      run();
      found = true;
    }
  if (!found) {
    std::printf("no test case named %s (see --list)\n", argv[1]);
    return EXIT_FAILURE;
  }
  if (failures == 0) std::printf("core tests passed\n");
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

// C++ benchmark of the all-pairs MI cores, without Python.
// Usage: bench_core [threads] [repeats] [case filter] [normal|student-t]; threads 0 or left out:
// OMP_NUM_THREADS, else every usable core (as the Python API), printed first. Binned: increments per
// second (layers x pairs x samples / s) for a GPT-2-sized paragraph (13 x 90 x 768) and a long
// corpus (4096 x 768). KSG: time per pair on one layer of the paragraph and on the corpus's first
// 96 variables, and that rate extrapolated to every pair (said so). The filter runs the cases whose
// name contains it. Data: standard normal draws (the default), or Student-t with 3 degrees of
// freedom (heavy tails, as bench_python.py's default).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "pairmi/binned_mi.hpp"
#include "pairmi/ksg.hpp"
#include "pairmi/parallel.hpp"
#include "pairmi/bin_layers.hpp"

namespace {

struct Case {
  const char* name;
  std::size_t layers, n, d;
  int bins;
};

bool student_t = false;  // the data: Student-t (3 d.o.f.) draws instead of standard normal ones

std::vector<float> draw_data(std::size_t size) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> normal;
  std::chi_squared_distribution<double> chi2(3);
  std::vector<float> x(size);
  for (auto& v : x) v = float(student_t ? normal(rng) / std::sqrt(chi2(rng) / 3) : normal(rng));
  return x;
}

template <class F>
double best_seconds(int repeats, F run) {
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

double pairs_of(std::size_t d) { return double(d) * double(d - 1) / 2; }

void binned_case(const Case& c, int threads, int repeats) {
  const auto x = draw_data(c.layers * c.n * c.d);
  std::vector<double> edges(c.layers * c.d * (c.bins + 1)), entropy(c.layers * c.d);
  std::vector<std::uint8_t> codes(c.layers * c.d * c.n);
  std::vector<float> out(c.layers * c.d * c.d);
  const double best = best_seconds(repeats, [&] {
    pairmi::equal_width_layer_edges(x.data(), c.layers, c.n, c.d, c.bins, edges.data(), threads);
    pairmi::bin_layers(x.data(), c.layers, c.n, c.d, edges.data(), c.bins, codes.data(), threads);
    pairmi::column_entropies(codes.data(), c.layers * c.d, c.n, c.bins, entropy.data(), threads);
    const pairmi::CodedLayers cl{codes.data(), entropy.data(), c.d};
    pairmi::binned_mi(cl, nullptr, c.layers, c.n, c.bins, 1.0 / std::log(2.0), out.data(), threads);
  });
  const double incs = c.layers * pairs_of(c.d) * c.n;
  std::printf("binned %-24s layers=%-3zu n=%-6zu d=%-5zu bins=%-3d threads=%d  best %.4f s  %.2f G increments/s\n",
              c.name, c.layers, c.n, c.d, c.bins, threads, best, incs / best / 1e9);
}

// KSG (k = 3) on c.layers x c.n x c.d; the time per pair is extrapolated to full_d variables.
void ksg_case(const Case& c, std::size_t full_d, int threads, int repeats) {
  const auto x = draw_data(c.layers * c.n * c.d);
  std::vector<float> out(c.layers * c.d * c.d);
  const double best = best_seconds(repeats, [&] {
    const auto sorted = pairmi::sort_columns(x.data(), c.layers, c.n, c.d, threads);
    pairmi::ksg_mi(sorted, nullptr, c.layers, 3, 1.0, out.data(), threads);
  });
  const double per_pair = best / (c.layers * pairs_of(c.d));
  std::printf("ksg    %-24s layers=%-3zu n=%-6zu d=%-5zu k=3     threads=%d  best %.3f s  %.2f us per pair", c.name,
              c.layers, c.n, c.d, threads, best, per_pair * 1e6);
  if (full_d != c.d) std::printf("  -> %zu dims extrapolated: %.0f s", full_d, per_pair * c.layers * pairs_of(full_d));
  std::printf("\n");
}

}  // namespace

// Threads when none are asked for: OpenMP's default (OMP_NUM_THREADS, else the usable cores), or 1
// without OpenMP.
int default_threads() {
#ifdef _OPENMP
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

int main(int argc, char** argv) {
  const int asked = argc > 1 ? std::atoi(argv[1]) : 0;
  const int threads = asked > 0 ? asked : default_threads();
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::string only = argc > 3 ? argv[3] : "";
  const std::string data = argc > 4 ? argv[4] : "normal";
  if (asked < 0 || repeats < 1 || (data != "normal" && data != "student-t")) {
    std::fprintf(stderr, "usage: bench_core [threads (0: all)] [repeats >= 1] [case filter] [normal|student-t]\n");
    return 2;
  }
  student_t = data == "student-t";
  std::printf("pairmi core benchmark (OpenMP %s, %d thread%s%s, %s data)\n", pairmi::has_openmp() ? "on" : "off",
              threads, threads == 1 ? "" : "s", asked > 0 ? "" : ", the default", student_t ? "Student-t" : "normal");
  auto wanted = [&](const std::string& name) { return name.find(only) != std::string::npos; };
  if (wanted("binned paragraph")) binned_case({"gpt2-sized paragraph", 13, 90, 768, 15}, threads, repeats);
  if (wanted("binned corpus"))
    binned_case({"long corpus, one layer", 1, 4096, 768, 15}, threads, std::max(1, repeats / 2));
  if (wanted("ksg paragraph")) ksg_case({"gpt2-sized paragraph", 1, 90, 768, 0}, 768, threads, 1);
  if (wanted("ksg corpus")) ksg_case({"long corpus, one layer", 1, 4096, 96, 0}, 768, threads, 1);
  return 0;
}

// C++ benchmark of the all-pairs binned MI core, without Python.
// Usage: bench_core [threads] [repeats] [paragraph|corpus]. Prints increments per second: layers x
// pairs x samples / s, for a GPT-2-sized paragraph (13 x 90 x 768) and a long corpus (4096 x 768).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "pairmi/parallel.hpp"
#include "pairmi/pipeline.hpp"

namespace {

struct Case {
  const char* name;
  std::size_t layers, n, d;
  int bins;
};

double run_case(const Case& c, int threads, int repeats) {
  std::mt19937_64 rng(42);
  std::normal_distribution<float> dist;
  std::vector<float> x(c.layers * c.n * c.d);
  for (auto& v : x) v = dist(rng);
  std::vector<double> edges(c.layers * c.d * (c.bins + 1)), entropy(c.layers * c.d);
  std::vector<std::uint8_t> codes(c.layers * c.d * c.n);
  std::vector<float> out(c.layers * c.d * c.d);
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pairmi::equal_width_layer_edges(x.data(), c.layers, c.n, c.d, c.bins, edges.data(), threads);
    pairmi::bin_layers(x.data(), c.layers, c.n, c.d, edges.data(), c.bins, codes.data(), threads);
    pairmi::column_entropies(codes.data(), c.layers * c.d, c.n, c.bins, entropy.data(), threads);
    const pairmi::CodedLayers cl{codes.data(), entropy.data(), c.d};
    pairmi::binned_mi(cl, nullptr, c.layers, c.n, c.bins, 1.0 / std::log(2.0), out.data(), threads);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
  }
  const double pairs = double(c.d) * (c.d - 1) / 2;
  const double incs = c.layers * pairs * c.n;
  std::printf("%-28s layers=%-3zu n=%-6zu d=%-5zu bins=%-3d threads=%d  best %.4f s  %.2f G increments/s\n",
              c.name, c.layers, c.n, c.d, c.bins, threads, best, incs / best / 1e9);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  std::printf("pairmi core benchmark (OpenMP %s)\n", pairmi::has_openmp() ? "on" : "off");
  const std::string only = argc > 3 ? argv[3] : "";
  if (only != "corpus") run_case({"gpt2-sized paragraph", 13, 90, 768, 15}, threads, repeats);
  if (only != "paragraph") run_case({"long corpus, one layer", 1, 4096, 768, 15}, threads, std::max(1, repeats / 2));
  return 0;
}

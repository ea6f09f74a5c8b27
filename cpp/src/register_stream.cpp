// Bindings of the streaming accumulators' core: joint counts added chunk by chunk, MI from counts.
// Argument checks a user can trip live in python/pairmi/stream.py; these guard the core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings.hpp"
#include "pairmi/accumulate.hpp"
#include "pairmi/binning.hpp"
#include "pairmi/pair_list.hpp"

namespace py = pybind11;
using pairmi_bindings::Array;
using pairmi_bindings::check_bins;
using pairmi_bindings::check_code_range;
using pairmi_bindings::require;
using pairmi_bindings::run_interruptible;

namespace {

using Totals = py::array_t<std::uint64_t, py::array::c_style>;

bool shape_is(const py::array& a, std::initializer_list<std::size_t> shape) {
  if (a.ndim() != py::ssize_t(shape.size())) return false;
  std::size_t k = 0;
  for (const std::size_t s : shape)
    if (a.shape(k++) != py::ssize_t(s)) return false;
  return true;
}

// Codes (layers, d, n) whose values are below bins (they index histograms unchecked).
void check_codes(const Array<std::uint8_t>& codes, int bins, const char* name) {
  require(codes.ndim() == 3, std::string(name) + " codes must be (layers, variables, samples)");
  check_code_range(codes, bins, name);
}

void add_pair_counts(const Array<std::uint8_t>& cx, const py::object& cy_obj, int bins, Totals counts,
                     Totals marginal_x, const py::object& marginal_y_obj, int threads) {
  check_bins(bins);
  check_codes(cx, bins, "x");
  const bool square = cy_obj.is_none();
  const std::size_t layers = cx.shape(0), dx = cx.shape(1), n = cx.shape(2);
  require(n < (std::size_t{1} << 32), "a chunk must have fewer than 2^32 samples");
  Array<std::uint8_t> cy = square ? cx : cy_obj.cast<Array<std::uint8_t>>();
  if (!square) {
    check_codes(cy, bins, "y");
    require(cy.shape(0) == cx.shape(0) && cy.shape(2) == cx.shape(2), "x and y codes must share layers and samples");
  }
  const std::size_t dy = cy.shape(1), b = std::size_t(bins);
  const pairmi::PairSlots slots{dx, dy, square};
  require(shape_is(counts, {layers, slots.count(), b, b}) && counts.writeable(),
          "counts must be a writeable (layers, pairs, bins, bins) uint64 array");
  require(shape_is(marginal_x, {layers, dx, b}) && marginal_x.writeable(),
          "marginal_x must be a writeable (layers, dx, bins) uint64 array");
  std::uint64_t* pmy = nullptr;
  Totals marginal_y;
  if (!square) {
    marginal_y = marginal_y_obj.cast<Totals>();
    require(shape_is(marginal_y, {layers, dy, b}) && marginal_y.writeable(),
            "marginal_y must be a writeable (layers, dy, bins) uint64 array");
    pmy = marginal_y.mutable_data();
  }
  const std::uint8_t *px = cx.data(), *py_ = square ? nullptr : cy.data();
  std::uint64_t *pc = counts.mutable_data(), *pmx = marginal_x.mutable_data();
  // Ctrl-C between tiles: the tiles added so far are taken out again, then KeyboardInterrupt.
  run_interruptible(py::none(), [&](const pairmi::TileMonitor& monitor) {
    pairmi::add_pair_counts(px, dx, py_, dy, layers, n, bins, pc, pmx, pmy, threads, monitor);
  });
}

template <class Out>
void mi_from_counts(const Totals& counts, const Totals& marginal_x, const py::object& marginal_y_obj, int bins,
                    std::uint64_t n, bool miller_madow, double scale, py::array_t<Out, py::array::c_style> out,
                    int threads) {
  check_bins(bins);
  require(n > 0, "no samples were counted");
  require(marginal_x.ndim() == 3, "marginal_x must be (layers, dx, bins)");
  const bool square = marginal_y_obj.is_none();
  const std::size_t layers = marginal_x.shape(0), dx = marginal_x.shape(1), b = std::size_t(bins);
  Totals marginal_y = square ? marginal_x : marginal_y_obj.cast<Totals>();
  require(marginal_y.ndim() == 3 && marginal_y.shape(0) == py::ssize_t(layers),
          "marginal_y must be (layers, dy, bins)");
  const std::size_t dy = marginal_y.shape(1);
  require(shape_is(marginal_x, {layers, dx, b}) && shape_is(marginal_y, {layers, dy, b}),
          "marginals must have bins columns");
  const pairmi::PairSlots slots{dx, dy, square};
  require(shape_is(counts, {layers, slots.count(), b, b}), "counts must be (layers, pairs, bins, bins)");
  require(shape_is(out, {layers, dx, dy}) && out.writeable(),
          "out must be a writeable C-contiguous (layers, dx, dy) array");
  const std::uint64_t *pc = counts.data(), *pmx = marginal_x.data(), *pmy = square ? nullptr : marginal_y.data();
  Out* po = out.mutable_data();
  py::gil_scoped_release release;
  pairmi::mi_from_counts(pc, pmx, pmy, layers, dx, dy, bins, n, miller_madow, scale, po, threads);
}

using PairIndex = py::array_t<std::uint32_t, py::array::c_style>;

// Pairs (first[p], second[p]) of the d variables of codes (d, n): both index arrays of one length,
// every index below d (they address codes unchecked).
void check_pairs(const PairIndex& first, const PairIndex& second, std::size_t d) {
  require(first.ndim() == 1 && second.ndim() == 1 && first.shape(0) == second.shape(0),
          "first and second must be 1-d uint32 arrays of one length");
  const std::size_t m = first.shape(0);
  const std::uint32_t *a = first.data(), *b = second.data();
  require(m == 0 || (*std::max_element(a, a + m) < d && *std::max_element(b, b + m) < d),
          "pair indices must be below the number of variables");
}

void add_pair_list_counts(const Array<std::uint8_t>& codes, const PairIndex& first, const PairIndex& second, int bins,
                          Totals counts, int threads) {
  check_bins(bins);
  require(codes.ndim() == 2, "codes must be (variables, samples)");
  check_code_range(codes, bins, "the");
  const std::size_t d = codes.shape(0), n = codes.shape(1), b = std::size_t(bins);
  require(n < (std::size_t{1} << 32), "a chunk must have fewer than 2^32 samples");
  check_pairs(first, second, d);
  const std::size_t m = first.shape(0);
  require(shape_is(counts, {m, b, b}) && counts.writeable(),
          "counts must be a writeable (pairs, bins, bins) uint64 array");
  const std::uint8_t* pc = codes.data();
  const std::uint32_t *pf = first.data(), *ps = second.data();
  std::uint64_t* pt = counts.mutable_data();
  run_interruptible(py::none(), [&](const pairmi::TileMonitor& monitor) {
    pairmi::add_pair_list_counts(pc, n, pf, ps, m, bins, pt, threads, monitor);
  });
}

template <class Out>
void mi_from_pair_list_counts(const Totals& counts, int bins, std::uint64_t n, bool miller_madow, double scale,
                              py::array_t<Out, py::array::c_style> out, int threads) {
  check_bins(bins);
  require(n > 0, "no samples were counted");
  const std::size_t b = std::size_t(bins);
  require(counts.ndim() == 3 && counts.shape(1) == py::ssize_t(b) && counts.shape(2) == py::ssize_t(b),
          "counts must be (pairs, bins, bins)");
  const std::size_t m = counts.shape(0);
  require(shape_is(out, {m}) && out.writeable(), "out must be a writeable (pairs,) array");
  const std::uint64_t* pc = counts.data();
  Out* po = out.mutable_data();
  py::gil_scoped_release release;
  pairmi::mi_from_pair_list_counts(pc, m, bins, n, miller_madow, scale, po, threads);
}

}  // namespace

void register_stream(py::module_& m) {
  m.def("add_pair_counts", &add_pair_counts, py::arg("codes_x"), py::arg("codes_y"), py::arg("bins"),
        py::arg("counts").noconvert(), py::arg("marginal_x").noconvert(), py::arg("marginal_y"), py::arg("threads"),
        "Add one chunk's joint counts of every pair (and each variable's counts) to the totals, in place; "
        "interrupted (Ctrl-C), the totals are left as they were.");
  m.def("mi_from_counts", &mi_from_counts<float>, py::arg("counts"), py::arg("marginal_x"), py::arg("marginal_y"),
        py::arg("bins"), py::arg("n"), py::arg("miller_madow"), py::arg("scale"), py::arg("out").noconvert(),
        py::arg("threads"));
  m.def("mi_from_counts", &mi_from_counts<double>, py::arg("counts"), py::arg("marginal_x"), py::arg("marginal_y"),
        py::arg("bins"), py::arg("n"), py::arg("miller_madow"), py::arg("scale"), py::arg("out").noconvert(),
        py::arg("threads"));
  m.def("add_pair_list_counts", &add_pair_list_counts, py::arg("codes"), py::arg("first"), py::arg("second"),
        py::arg("bins"), py::arg("counts").noconvert(), py::arg("threads"),
        "Add one chunk's joint counts of the listed pairs (first[p], second[p]) to counts (pairs, bins, bins), in "
        "place; interrupted (Ctrl-C), the counts are left as they were.");
  m.def("mi_from_pair_list_counts", &mi_from_pair_list_counts<double>, py::arg("counts"), py::arg("bins"), py::arg("n"),
        py::arg("miller_madow"), py::arg("scale"), py::arg("out").noconvert(), py::arg("threads"));
}

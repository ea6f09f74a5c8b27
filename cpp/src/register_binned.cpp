// Bindings of the binned estimators: edges, codes, entropies and the MI of all pairs. They check
// shapes and dtypes, release the GIL and call the core; argument checks a user can trip live in
// python/pairmi, these guard the core against misuse.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings.hpp"
#include "pairmi/bin_layers.hpp"
#include "pairmi/binned_mi.hpp"

namespace py = pybind11;
using pairmi_bindings::Array;
using pairmi_bindings::check_bins;
using pairmi_bindings::check_code_range;
using pairmi_bindings::require;
using pairmi_bindings::run_interruptible;

namespace {

// (layers, n, d) samples -> (layers, d, bins + 1) edges, by Fill (equal-width or equal-frequency).
template <class T, void (*Fill)(const T*, std::size_t, std::size_t, std::size_t, int, double*, int)>
py::array_t<double> layer_edges(const Array<T>& x, int bins, int threads) {
  require(x.ndim() == 3, "x must be (layers, samples, variables)");
  check_bins(bins);
  const std::size_t layers = x.shape(0), n = x.shape(1), d = x.shape(2);
  require(n >= 1, "x needs at least one sample");
  py::array_t<double> edges({layers, d, std::size_t(bins) + 1});
  const T* px = x.data();
  double* pe = edges.mutable_data();
  {
    py::gil_scoped_release release;
    Fill(px, layers, n, d, bins, pe, threads);
  }
  return edges;
}

// (layers, n, d) samples and (layers, d, bins + 1) edges -> (layers, d, n) uint8 codes.
template <class T>
py::array_t<std::uint8_t> bin_codes(const Array<T>& x, const Array<double>& edges, int threads) {
  require(x.ndim() == 3 && edges.ndim() == 3, "x and edges must be 3-d");
  const std::size_t layers = x.shape(0), n = x.shape(1), d = x.shape(2);
  require(edges.shape(0) == py::ssize_t(layers) && edges.shape(1) == py::ssize_t(d) && edges.shape(2) >= 3,
          "edges must be (layers, variables, bins + 1) for x's layers and variables");
  const int bins = static_cast<int>(edges.shape(2)) - 1;
  check_bins(bins);
  py::array_t<std::uint8_t> codes({layers, d, n});
  const T* px = x.data();
  const double* pe = edges.data();
  std::uint8_t* pc = codes.mutable_data();
  {
    py::gil_scoped_release release;
    pairmi::bin_layers(px, layers, n, d, pe, bins, pc, threads);
  }
  return codes;
}

void check_codes(const Array<std::uint8_t>& codes, const Array<double>& entropy, int bins, const char* name) {
  require(codes.ndim() == 3, std::string(name) + " codes must be (layers, variables, samples)");
  require(entropy.ndim() == 2 && entropy.shape(0) == codes.shape(0) && entropy.shape(1) == codes.shape(1),
          std::string(name) + " entropies must be (layers, variables)");
  check_code_range(codes, bins, name);
}

// (layers, d, n) codes -> (layers, d) entropies in nats, plug-in or Miller-Madow.
py::array_t<double> entropies(const Array<std::uint8_t>& codes, int bins, int threads, bool miller_madow) {
  require(codes.ndim() == 3, "codes must be (layers, variables, samples)");
  check_bins(bins);
  check_code_range(codes, bins, "the");
  const std::size_t layers = codes.shape(0), d = codes.shape(1), n = codes.shape(2);
  py::array_t<double> h({layers, d});
  const std::uint8_t* pc = codes.data();
  double* ph = h.mutable_data();
  {
    py::gil_scoped_release release;
    pairmi::column_entropies(pc, layers * d, n, bins, ph, threads, miller_madow);
  }
  return h;
}

// MI of all pairs into out (layers, dx, dy); y codes None means x against itself.
// `progress(done, total)` (optional) is called between tiles; Ctrl-C stops the run and raises.
template <class Out>
void binned_mi(const Array<std::uint8_t>& cx, const Array<double>& hx, const py::object& cy_obj,
               const py::object& hy_obj, int bins, double scale, py::array_t<Out, py::array::c_style> out, int threads,
               const py::object& progress, bool miller_madow) {
  check_bins(bins);
  check_codes(cx, hx, bins, "x");
  const bool square = cy_obj.is_none();
  Array<std::uint8_t> cy = square ? cx : cy_obj.cast<Array<std::uint8_t>>();
  Array<double> hy = square ? hx : hy_obj.cast<Array<double>>();
  if (!square) check_codes(cy, hy, bins, "y");
  const std::size_t layers = cx.shape(0), dx = cx.shape(1), n = cx.shape(2), dy = cy.shape(1);
  require(cy.shape(0) == py::ssize_t(layers) && cy.shape(2) == py::ssize_t(n),
          "x and y codes must have the same layers and samples");
  require(out.ndim() == 3 && out.shape(0) == py::ssize_t(layers) && out.shape(1) == py::ssize_t(dx) &&
              out.shape(2) == py::ssize_t(dy),
          "out must be a C-contiguous (layers, dx, dy) array");
  require(out.writeable(), "out must be writeable");
  require(n >= 1, "codes need at least one sample");

  const pairmi::CodedLayers x{cx.data(), hx.data(), dx}, y{cy.data(), hy.data(), dy};
  Out* po = out.mutable_data();
  run_interruptible(progress, [&](const pairmi::TileMonitor& monitor) {
    pairmi::binned_mi(x, square ? nullptr : &y, layers, n, bins, scale, po, threads, monitor, miller_madow);
  });
}

}  // namespace

void register_binned(py::module_& m) {
  m.def("equal_width_edges", &layer_edges<float, pairmi::equal_width_layer_edges<float>>, py::arg("x").noconvert(),
        py::arg("bins"), py::arg("threads"));
  m.def("equal_width_edges", &layer_edges<double, pairmi::equal_width_layer_edges<double>>, py::arg("x"),
        py::arg("bins"), py::arg("threads"));
  m.def("equal_frequency_edges", &layer_edges<float, pairmi::equal_frequency_layer_edges<float>>,
        py::arg("x").noconvert(), py::arg("bins"), py::arg("threads"));
  m.def("equal_frequency_edges", &layer_edges<double, pairmi::equal_frequency_layer_edges<double>>, py::arg("x"),
        py::arg("bins"), py::arg("threads"));
  m.def("bin_codes", &bin_codes<float>, py::arg("x").noconvert(), py::arg("edges"), py::arg("threads"));
  m.def("bin_codes", &bin_codes<double>, py::arg("x"), py::arg("edges"), py::arg("threads"));
  m.def("entropies", &entropies, py::arg("codes"), py::arg("bins"), py::arg("threads"),
        py::arg("miller_madow") = false);
  m.def("binned_mi", &binned_mi<float>, py::arg("codes_x"), py::arg("entropy_x"), py::arg("codes_y"),
        py::arg("entropy_y"), py::arg("bins"), py::arg("scale"), py::arg("out").noconvert(), py::arg("threads"),
        py::arg("progress") = py::none(), py::arg("miller_madow") = false);
  m.def("binned_mi", &binned_mi<double>, py::arg("codes_x"), py::arg("entropy_x"), py::arg("codes_y"),
        py::arg("entropy_y"), py::arg("bins"), py::arg("scale"), py::arg("out").noconvert(), py::arg("threads"),
        py::arg("progress") = py::none(), py::arg("miller_madow") = false);
  m.def("binned_plan_bytes", &pairmi::binned_plan_bytes, py::arg("layers"), py::arg("samples"), py::arg("x_cols"),
        py::arg("y_cols"), py::arg("bins"), "Bytes binned_mi's plans allocate, at most (y_cols 0: x against itself).");
}

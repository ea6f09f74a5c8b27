// Bindings of KSG: checks shapes and dtypes, releases the GIL and calls the core; argument checks a
// user can trip live in python/pairmi, these guard the core against misuse.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>

#include "bindings.hpp"
#include "pairmi/ksg.hpp"

namespace py = pybind11;
using pairmi_bindings::Array;
using pairmi_bindings::require;
using pairmi_bindings::run_interruptible;

namespace {

// KSG MI of all pairs of x (layers, n, dx) against itself (y None) or y (layers, n, dy) into out.
template <class T, class Out>
void ksg_mi(const Array<T>& x, const py::object& y_obj, int k, double scale, py::array_t<Out, py::array::c_style> out,
            int threads, const py::object& progress) {
  require(x.ndim() == 3, "x must be (layers, samples, variables)");
  const bool square = y_obj.is_none();
  const Array<T> y = square ? x : y_obj.cast<Array<T>>();
  require(y.ndim() == 3 && y.shape(0) == x.shape(0) && y.shape(1) == x.shape(1),
          "x and y must have the same layers and samples");
  const std::size_t layers = x.shape(0), n = x.shape(1), dx = x.shape(2), dy = y.shape(2);
  require(k >= 1 && std::size_t(k) < n, "k must be in [1, samples - 1]");
  require(out.ndim() == 3 && out.shape(0) == py::ssize_t(layers) && out.shape(1) == py::ssize_t(dx) &&
              out.shape(2) == py::ssize_t(dy) && out.writeable(),
          "out must be a writeable C-contiguous (layers, dx, dy) array");
  const T *px = x.data(), *py_ = y.data();
  Out* po = out.mutable_data();
  run_interruptible(progress, [&](const pairmi::TileMonitor& monitor) {
    const auto sx = pairmi::sort_columns(px, layers, n, dx, threads);
    if (square) {
      pairmi::ksg_mi(sx, nullptr, layers, k, scale, po, threads, monitor);
    } else {
      const auto sy = pairmi::sort_columns(py_, layers, n, dy, threads);
      pairmi::ksg_mi(sx, &sy, layers, k, scale, po, threads, monitor);
    }
  });
}

}  // namespace

void register_ksg(py::module_& m) {
  // float32 x takes the float32 overloads only when y is float32 too (or None); else float64.
  m.def("ksg_mi", &ksg_mi<float, float>, py::arg("x").noconvert(), py::arg("y"), py::arg("k"), py::arg("scale"),
        py::arg("out").noconvert(), py::arg("threads"), py::arg("progress") = py::none());
  m.def("ksg_mi", &ksg_mi<float, double>, py::arg("x").noconvert(), py::arg("y"), py::arg("k"), py::arg("scale"),
        py::arg("out").noconvert(), py::arg("threads"), py::arg("progress") = py::none());
  m.def("ksg_mi", &ksg_mi<double, float>, py::arg("x"), py::arg("y"), py::arg("k"), py::arg("scale"),
        py::arg("out").noconvert(), py::arg("threads"), py::arg("progress") = py::none());
  m.def("ksg_mi", &ksg_mi<double, double>, py::arg("x"), py::arg("y"), py::arg("k"), py::arg("scale"),
        py::arg("out").noconvert(), py::arg("threads"), py::arg("progress") = py::none());
  m.def("ksg_worker_bytes", &pairmi::ksg_worker_bytes, py::arg("samples"), py::arg("k"),
        "Bytes of scratch each thread of ksg_mi allocates.");
  m.def(
      "ksg_sorted_bytes",
      [](std::size_t cols, std::size_t samples) { return pairmi::SortedColumns::bytes(cols, samples); },
      py::arg("cols"), py::arg("samples"), "Bytes of the sorted copies ksg_mi makes of `cols` variables.");
}

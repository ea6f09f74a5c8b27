// The private extension module pairmi._core: declares the module, one register_* per family.
#include <pybind11/pybind11.h>

#include "pairmi/parallel.hpp"

namespace py = pybind11;

void register_binned(py::module_& m);
void register_ksg(py::module_& m);
void register_stream(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "pairmi's compiled core (private: use the pairmi package)";
  m.attr("has_openmp") = pairmi::has_openmp();
  m.attr("__version__") = PAIRMI_VERSION;
  register_binned(m);
  register_ksg(m);
  register_stream(m);
}

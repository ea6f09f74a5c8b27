// What the bindings share: array types, argument checks that raise ValueError, and running a core
// call without the GIL while Ctrl-C and progress callbacks still work.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "pairmi/binning.hpp"
#include "pairmi/tiles.hpp"

namespace pairmi_bindings {

namespace py = pybind11;

template <class T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A failed check raises ValueError in Python (pybind11 translates std::invalid_argument).
inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

inline void check_bins(int bins) { require(bins >= 2 && bins <= pairmi::kMaxBins, "bins must be in [2, 255]"); }

// Codes index histograms without bounds checks in the core: each must be below bins.
inline void check_code_range(const Array<std::uint8_t>& codes, int bins, const std::string& name) {
  const std::uint8_t* begin = codes.data();
  const std::uint8_t* end = begin + codes.size();
  require(codes.size() == 0 || *std::max_element(begin, end) < bins, name + " codes must be below bins");
}

// Runs `body(monitor)` without the GIL. Between tiles the monitor briefly takes the GIL to check
// for signals (Ctrl-C stops the run and raises KeyboardInterrupt) and to call `progress`.
template <class Body>
void run_interruptible(const py::object& progress, Body body) {
  bool failed = false;
  const pairmi::TileMonitor monitor = [&](std::size_t done, std::size_t total) {
    py::gil_scoped_acquire acquire;
    if (failed || PyErr_CheckSignals() != 0) {
      failed = true;
      return false;
    }
    if (!progress.is_none()) {
      try {
        progress(done, total);
      } catch (py::error_already_set& e) {
        e.restore();  // re-raised below, once the run has stopped
        failed = true;
        return false;
      }
    }
    return true;
  };
  {
    py::gil_scoped_release release;
    body(monitor);
  }
  if (failed) throw py::error_already_set();
}

}  // namespace pairmi_bindings

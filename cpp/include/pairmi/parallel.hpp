// OpenMP is optional: without it every loop runs serially and the thread count is ignored.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pairmi {

constexpr bool has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace pairmi

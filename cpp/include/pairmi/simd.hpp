// What the vector kernels share: unaligned loads, vector types of W lanes, and the AVX2 builds of
// kernels, compiled alongside the baseline ones and chosen at run time (wheels stay baseline x86-64).
#pragma once

#include <cstdint>
#include <cstring>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define PAIRMI_AVX2_KERNELS 1  // kernels also compiled for AVX2 ([[gnu::target("avx2")]])
#include <immintrin.h>
#endif

namespace pairmi {

// Whether this CPU runs the AVX2 builds of the kernels.
inline bool cpu_has_avx2() {
#ifdef PAIRMI_AVX2_KERNELS
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

// sizeof(T) consecutive bytes from p as one T (one load instruction).
template <class T, class Code>
T load_unaligned(const Code* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// W bytes compared at once (a dependent vector_size is not applied in templates, hence one per W).
template <int W>
struct ByteLanes;
template <>
struct ByteLanes<16> {
  using type = std::uint8_t __attribute__((vector_size(16)));
};
template <>
struct ByteLanes<32> {
  using type = std::uint8_t __attribute__((vector_size(32)));
};

// W float32 lanes handled at once, and the comparison masks (a dependent vector_size is not
// applied in templates, hence one per W). Four lanes are one SSE2 or NEON register.
template <int W>
struct FloatLanes;
template <>
struct FloatLanes<4> {
  using type = float __attribute__((vector_size(16)));
  using mask = std::int32_t __attribute__((vector_size(16)));
};
template <>
struct FloatLanes<8> {
  using type = float __attribute__((vector_size(32)));
  using mask = std::int32_t __attribute__((vector_size(32)));
};

}  // namespace pairmi

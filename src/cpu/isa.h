// CPU instruction-set variants of the quantized matmul, and how each ISA
// file is compiled.
//
// Each SIMD variant lives in its own file (avx512.cpp, avx2.cpp, neon.cpp)
// that instantiates the shared templates of qmm_kernels.h for its traits
// struct, tuned by its row of kernel_tuning.h. x86 variants are compiled for their target with a pragma (never
// with -march flags on the whole build), so the library still loads on any
// x86-64 CPU and only calls them after a run-time feature check.
//
// The ODR pitfall: an inline function or template instantiated in an
// AVX-512 file and also in a generic file gets one definition at link time,
// possibly the AVX-512 one, which then runs on CPUs without AVX-512. So:
//   * every ISA file includes kernel_includes.h (standard and common headers)
//     BEFORE it switches the target on, so no shared inline code is compiled
//     for the ISA;
//   * the ISA code (traits and the qmm_kernels.h templates) sits in an
//     unnamed namespace: internal linkage, never merged with anything;
//   * only a plain function (`<isa>_qmm`) crosses the file boundary, and it
//     is only called after <isa>_supported() said yes.
#pragma once

#include "kernel_abi.h"
#include "kernel_tuning.h"
#include "reference.h"

#if defined(__x86_64__) || defined(_M_X64)
#define ONEBIT_CPU_X86 1
#else
#define ONEBIT_CPU_X86 0
#endif

// NEON is part of the aarch64 baseline: no run-time check is needed.
#if defined(__aarch64__) || defined(_M_ARM64)
#define ONEBIT_CPU_ARM64 1
#else
#define ONEBIT_CPU_ARM64 0
#endif

// ONEBIT_TARGET_PUSH("avx2,fma") ... ONEBIT_TARGET_POP(): compile the
// functions in between for those x86 features, with gcc or clang.
#define ONEBIT_STR2(x) #x
#define ONEBIT_STR(x) ONEBIT_STR2(x)
#if defined(__clang__)
#define ONEBIT_TARGET_PUSH(features) \
  _Pragma(ONEBIT_STR(clang attribute push(__attribute__((target(features))), apply_to = function)))
#define ONEBIT_TARGET_POP() _Pragma("clang attribute pop")
#else
#define ONEBIT_TARGET_PUSH(features) _Pragma("GCC push_options") _Pragma(ONEBIT_STR(GCC target(features)))
#define ONEBIT_TARGET_POP() _Pragma("GCC pop_options")
#endif

// On a function (or a lambda, after its parameter list) that must be
// inlined whatever the compiler's size heuristics say.
#define ONEBIT_ALWAYS_INLINE __attribute__((always_inline))

namespace onebit {
namespace cpu {

using QmmFn = void (*)(const QmmArgs& args);
// n values from src (dtype from) to dst (dtype to), as common/dtype.h's convert.
using ConvertFn = void (*)(const void* src, DType from, void* dst, DType to, std::int64_t n);

struct Isa {
  const char* name;
  bool (*supported)();        // may this CPU run it
  QmmFn qmm;                    // runs args.kernel, parallel over the thread pool
  const KernelTuning* tuning;   // null for the scalar reference
  ConvertFn convert;            // widens x to float32 and narrows results
};

#if ONEBIT_CPU_X86
// Half-precision conversions (cpuid leaf 1, ECX bit 29): not every compiler's
// __builtin_cpu_supports knows the name "f16c".
bool x86_has_f16c();
bool avx512_supported();
void avx512_qmm(const QmmArgs& args);
void avx512_convert(const void* src, DType from, void* dst, DType to, std::int64_t n);
bool avx2_supported();
void avx2_qmm(const QmmArgs& args);
void avx2_convert(const void* src, DType from, void* dst, DType to, std::int64_t n);
#endif
#if ONEBIT_CPU_ARM64
void neon_qmm(const QmmArgs& args);
void neon_convert(const void* src, DType from, void* dst, DType to, std::int64_t n);
#endif

// The variants compiled into this build, best first; "scalar" (the
// reference) is always last.
const std::vector<Isa>& compiled_isas();

// The variant quantized_matmul uses now. The first call resolves it once:
// PYONEBIT_CPU_ISA if set (ValueError if unknown or unsupported), else the
// best supported variant.
const Isa& active_isa();

}  // namespace cpu
}  // namespace onebit

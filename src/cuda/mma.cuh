// The tensor-core instruction the kernels share: mma.sync m16n8k16 (sm_80+), row-major A,
// column-major B, float32 accumulators; d += a * b, a and b holding pairs of X (float16 or
// bfloat16). Fragment layouts: the PTX ISA's "Matrix Fragments for mma.m16n8k16".
#pragma once

#include "codes.cuh"

namespace onebit {
namespace cuda {

template <class X>
__device__ __forceinline__ void mma_16816(float (&d)[4], const std::uint32_t (&a)[4],
                                          const std::uint32_t (&b)[2]);

// One specialization per X: the PTX type is part of the instruction's name.
#define ONEBIT_MMA_16816(X, PTX_TYPE)                                                            \
  template <>                                                                                    \
  __device__ __forceinline__ void mma_16816<X>(float (&d)[4], const std::uint32_t (&a)[4],       \
                                               const std::uint32_t (&b)[2]) {                    \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." PTX_TYPE "." PTX_TYPE                 \
                 ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                  \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));            \
  }
ONEBIT_MMA_16816(__half, "f16")
ONEBIT_MMA_16816(__nv_bfloat16, "bf16")
#undef ONEBIT_MMA_16816

constexpr std::uint32_t kTwoPair = 0x40004000u;  // 2.0 in both halves, float16 and bfloat16

// Bits S and S + 16 of w as a pair of 0 / 2.0 halves (S <= 14): weight bits as an mma operand
// (the bit moved onto the exponent's top bit, 0x4000 in both half types; a shift and an AND).
template <int S>
__device__ __forceinline__ std::uint32_t bit_pair(std::uint32_t w) {
  return (w << (14 - S)) & kTwoPair;
}

}  // namespace cuda
}  // namespace onebit

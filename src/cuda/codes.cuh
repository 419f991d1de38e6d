// Device helpers shared by the kernels: element types, code extraction,
// and the argument block every kernel takes.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace onebit {
namespace cuda {

// One matrix product (one batch entry): out (M x N) = x (M x K) @ W_hat^T or @ W_hat.
struct KernelArgs {
  const void* x;
  const std::uint32_t* wq;
  const void* scales;
  const void* biases;  // null in symmetric mode
  void* out;
  int M, N, K;
  int group_size;
  bool symmetric;
};

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Result type as in MLX: x's type when it equals the scales', else float32.
template <class X, class S>
struct OutType { using type = float; };
template <class X>
struct OutType<X, X> { using type = X; };

// Code of element e of a packed row: bits [e*BITS, (e+1)*BITS) of the
// little-endian bit stream (codes of 3/5/6 bits may straddle two words).
template <int BITS>
__device__ __forceinline__ std::uint32_t code_at(const std::uint32_t* row, std::int64_t e) {
  const std::int64_t bit = e * BITS;
  const std::uint32_t shift = static_cast<std::uint32_t>(bit & 31);
  const std::uint32_t* word = row + (bit >> 5);
  std::uint32_t v = __ldg(word) >> shift;
  if (32 % BITS != 0 && shift + BITS > 32) v |= __ldg(word + 1) << (32 - shift);
  return v & ((1u << BITS) - 1u);
}

// Programmatic dependent launch (sm_90): the next kernel in the stream may start
// (its blocks run up to their wait) once every block of this one has called
// allow_next_kernel() or exited; wait_for_previous_kernel() returns when the previous
// kernel has finished and its writes are visible (at once when it was not launched
// early). Every kernel allows the next one only after its own wait, so an early kernel
// overlaps at most one running kernel: the one before it. Reads of anything that kernel
// may write (x; W too when the host saw it could: early_launch_allowed in backend.cu)
// and every write come after the wait.
__device__ __forceinline__ void allow_next_kernel() {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}
__device__ __forceinline__ void wait_for_previous_kernel() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
}
// Brings the line of p into L2 (a hint: no register written, no fault).
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// 16 bytes from global to shared memory without registers (cp.async, sm_80+; both
// 16-byte aligned); copy_async_commit() closes a group, copy_async_wait_all() waits for
// this thread's groups (a __syncthreads() after it publishes them to the block).
__device__ __forceinline__ void copy_async_16(void* smem, const void* gmem) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(gmem) : "memory");
}
// The same, 16 or 4 bytes, writing zeros (and reading nothing) where !valid.
__device__ __forceinline__ void copy_async_16_or_zeros(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(gmem), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void copy_async_4_or_zeros(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(dst), "l"(gmem), "r"(valid ? 4 : 0)
               : "memory");
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void copy_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// w_hat = scale * q + bias (affine) or q ? +scale : -scale (symmetric). One rounding
// (a fused multiply-add): within half an ulp of the exact w_hat the scalar reference
// computes in float64, also where scale * q and bias cancel; two roundings are off by
// up to half an ulp of scale * q there, past the error bound of a short product.
__device__ __forceinline__ float dequant(std::uint32_t q, float scale, float bias, bool symmetric) {
  if (symmetric) return q ? scale : -scale;
  return __fmaf_rn(scale, static_cast<float>(q), bias);
}

}  // namespace cuda
}  // namespace onebit

// The CPU kernel ABI: what the backend hands every kernel variant (the
// scalar reference and each ISA's qmm, isa.h) for one 2-D product.
#pragma once

#include <cstdint>

#include "kernel_choice.h"
#include "onebit/onebit.h"

namespace onebit {
namespace cpu {

// One quantized matrix product on contiguous matrices:
//   out (M x N, float32) = x (M x K, float32) @ W_hat.T  (transpose)
//   out (M x N, float32) = x (M x K, float32) @ W_hat    (!transpose)
// with W_hat = scale * q + bias (affine) or (q ? +scale : -scale) (symmetric),
// read from wq / scales / biases (biases null in symmetric mode). Activations
// arrive as float32 (widening float16/bfloat16 is exact), so no kernel ever
// rounds them.
struct QmmArgs {
  const float* x;
  const std::uint32_t* wq;
  const void* scales;
  const void* biases;
  DType scale_dtype;
  float* out;
  std::int64_t M, N, K;
  QuantSpec spec;
  bool transpose;
  WeightLayout layout;  // interleaved16 only with transpose
  CpuKernel kernel;     // what choose_cpu_kernel chose (the scalar reference ignores it)
};

}  // namespace cpu
}  // namespace onebit

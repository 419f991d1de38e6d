// The scalar reference kernels: the executable specification of the format.
// Every other kernel (SIMD, Metal, emulated Metal) is tested against these.
#pragma once

#include <cstdint>

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
};

// Runs `qmm` (a kernel for mlx-layout weights) on interleaved16 ones, one
// slab of rows at a time: each slab's words, scales and biases are put back
// in mlx order in per-call buffers and its results copied into place, so
// the extra memory is a slab (kSlabRows rows of the packed weight and
// M x kSlabRows floats), not N x K.
void run_deinterleaved(const QmmArgs& args, void (*qmm)(const QmmArgs&));

// Accumulates in float64 and forms each W_hat exactly: the most accurate
// answer the format defines, never materialising W_hat.
void reference_qmm(const QmmArgs& args);

}  // namespace cpu
}  // namespace onebit

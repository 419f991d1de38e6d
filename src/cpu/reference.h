// The scalar reference kernels: the executable specification of the format.
// Every other kernel (SIMD, Metal, emulated Metal) is tested against these.
#pragma once

#include "kernel_abi.h"

namespace onebit {
namespace cpu {

// Runs `qmm` (a kernel for mlx-layout weights) on interleaved16 ones, one
// slab of rows at a time: each slab's words, scales and biases are put back
// in mlx order in per-call buffers and its results copied into place, so
// the extra memory is a slab (kSlabRows rows of the packed weight and
// M x kSlabRows floats), not N x K.
void run_deinterleaved(const QmmArgs& args, void (*qmm)(const QmmArgs&));

// quantize / dequantize (onebit.h) on validated plans and outputs: they
// reproduce MLX's CPU results bit for bit.
void reference_quantize(const QuantizePlan& plan, std::uint32_t* wq, void* scales, void* biases);
void reference_dequantize(const DequantizePlan& plan, void* out);

// Accumulates in float64 and forms each W_hat exactly: the most accurate
// answer the format defines, never materialising W_hat.
void reference_qmm(const QmmArgs& args);

}  // namespace cpu
}  // namespace onebit

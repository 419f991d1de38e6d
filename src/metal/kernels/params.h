// Constant structs passed to the kernels as `constant P& [[buffer(i)]]`.
// Included by the shaders (MSL) and by the planner (C++17), which writes these
// bytes into Binding::bytes: the layout must be identical in both languages,
// so only fixed-size 32-bit integers, no pointers, no padding.
#pragma once

#ifdef __METAL_VERSION__
#include <metal_stdlib>
#else
#include <stdint.h>
#endif

namespace onebit {
namespace shader {

// Every matmul kernel. Dimensions are those of MatmulPlan: y (M x N) =
// x (M x K) @ W_hat.T (transposed kernels) or x @ W_hat. The planner rejects
// dimensions above INT32_MAX; kernels form products of them in 64 bits.
struct MatmulParams {
  int32_t M;
  int32_t N;
  int32_t K;
  int32_t batch_ndim;  // entries of batch_shape (buffer 6), at least 1
};

// quantize and dequantize: the weights viewed as `rows` rows of K elements.
struct QuantizeParams {
  int32_t rows;
  int32_t K;
};

}  // namespace shader
}  // namespace onebit

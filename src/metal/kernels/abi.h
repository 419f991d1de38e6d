// The matmul kernels' parameter list (src/metal/README.md, "Kernel ABI"),
// written once, and the per-batch view of the operands every kernel starts
// from. The macros exist so that the seven matmul kernels cannot drift from
// the ABI or from each other.
#pragma once

#include <metal_stdlib>

#include "params.h"

using namespace metal;

// Buffers 0..7 of every matmul kernel, in index order.
#define ONEBIT_MATMUL_BUFFERS(T)                                    \
  const device uint32_t* wq [[buffer(0)]],                          \
      const device T* scales [[buffer(1)]],                         \
      const device T* biases [[buffer(2)]],                         \
      const device T* x [[buffer(3)]],                              \
      device T* y [[buffer(4)]],                                    \
      constant onebit::shader::MatmulParams& params [[buffer(5)]],  \
      const device long* batch_shape [[buffer(6)]],                 \
      const device long* batch_strides [[buffer(7)]]

// The four thread-position parameters that end every kernel's list.
#define ONEBIT_THREAD_POSITION                                  \
  uint3 tgid [[threadgroup_position_in_grid]],                  \
      uint3 lid [[thread_position_in_threadgroup]],             \
      uint simd_gid [[simdgroup_index_in_threadgroup]],         \
      uint simd_lid [[thread_index_in_simdgroup]]

// The operands of output batch tgid.z, for a kernel whose W is packed along K
// (transposed) or along N. Inside a kernel with the parameters above.
#define ONEBIT_BATCH_OPERANDS(transposed)                                                  \
  onebit::shader::batch_operands<T, group_size, bits, transposed>(                         \
      wq, scales, biases, x, y, params, batch_shape, batch_strides, tgid.z)

namespace onebit {
namespace shader {

template <typename T>
struct MatmulOperands {
  const device uint8_t* w;  // this batch's packed matrix, read as a byte stream
  const device T* scales;   // this batch's scales and biases,
  const device T* biases;   //   indexed row * row_groups + group
  const device T* x;        // this batch's M x K activations
  device T* y;              // this batch's M x N output
  int M, N, K;
  long row_bytes;  // bytes of one packed row
  int row_groups;  // groups per packed row
};

// W is (N, K) packed along K when transposed, else (K, N) packed along N.
// Output batch `batch` is an index into the broadcast batch dims batch_shape;
// batch_strides holds x's strides (elements) for those dims, then W's (whole
// matrices: wq, scales and biases alike). A few divisions per threadgroup,
// so the host's memory for them does not grow with the number of batches.
template <typename T, int group_size, int bits, bool transposed>
inline MatmulOperands<T> batch_operands(const device uint32_t* wq, const device T* scales,
                                        const device T* biases, const device T* x, device T* y,
                                        constant MatmulParams& p, const device long* batch_shape,
                                        const device long* batch_strides, uint batch) {
  const int rows = transposed ? p.N : p.K;
  const int packed = transposed ? p.K : p.N;
  MatmulOperands<T> op;
  op.M = p.M;
  op.N = p.N;
  op.K = p.K;
  op.row_bytes = long(packed) * bits / 8;
  op.row_groups = packed / group_size;
  long x_offset = 0, w_index = 0;
  long rest = batch;
  for (int i = p.batch_ndim - 1; i >= 0; --i) {
    const long index = rest % batch_shape[i];
    rest /= batch_shape[i];
    x_offset += index * batch_strides[i];
    w_index += index * batch_strides[p.batch_ndim + i];
  }
  op.w = reinterpret_cast<const device uint8_t*>(wq) + w_index * rows * op.row_bytes;
  op.scales = scales + w_index * rows * op.row_groups;
  op.biases = biases + w_index * rows * op.row_groups;
  op.x = x + x_offset;
  op.y = y + long(batch) * p.M * p.N;
  return op;
}

}  // namespace shader
}  // namespace onebit

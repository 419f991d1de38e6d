// NAX-style kernels for the emulated Metal 4 tensor ops (msl_tensor.h).
#include <metal_stdlib>
#include <metal_tensor>
#include <MetalPerformancePrimitives/MetalPerformancePrimitives.h>
using namespace metal;

constexpr int TM = 16, TN = 32, TK = 40;  // TK: a ragged K (not a multiple of 8/16/32)

// out[g] (TM x TN, float) = a (TM x TK) * b (TK x TN), both half, through a
// cooperative destination tensor; every threadgroup computes the same tile.
[[kernel]] void nax_cooperative(const device half* a [[buffer(0)]], const device half* b [[buffer(1)]],
                                device float* out [[buffer(2)]],
                                uint3 tgid [[threadgroup_position_in_grid]],
                                uint3 lid [[thread_position_in_threadgroup]],
                                uint simd_gid [[simdgroup_index_in_threadgroup]],
                                uint simd_lid [[thread_index_in_simdgroup]]) {
  auto ta = tensor<const device half, dextents<int, 2>, tensor_inline>(a, dextents<int, 2>(TK, TM));
  auto tb = tensor<const device half, dextents<int, 2>, tensor_inline>(b, dextents<int, 2>(TN, TK));
  auto tc = tensor<device float, dextents<int, 2>, tensor_inline>(out + tgid.x * TM * TN,
                                                                    dextents<int, 2>(TN, TM));
  constexpr auto desc = mpp::tensor_ops::matmul2d_descriptor(
      TM, TN, static_cast<int>(dynamic_extent), false, false, false,
      mpp::tensor_ops::matmul2d_descriptor::mode::multiply_accumulate);
  mpp::tensor_ops::matmul2d<desc, execution_simdgroups<4>> op;
  auto ct = op.get_destination_cooperative_tensor<decltype(ta), decltype(tb), float>();
  for (int i = 0; i < ct.get_capacity(); ++i)  // a new cooperative tensor holds no defined values
    if (ct.is_valid_element(i)) ct[i] = 0.0f;
  op.run(ta, tb, ct);
  ct.store(tc);
}

// The same product into threadgroup memory, with B stored transposed
// (TN x TK, k contiguous) and K split in two runs that accumulate.
[[kernel]] void nax_threadgroup(const device half* a [[buffer(0)]], const device half* bt [[buffer(1)]],
                                device float* out [[buffer(2)]],
                                threadgroup float* tile [[threadgroup(0)]],
                                uint3 tgid [[threadgroup_position_in_grid]],
                                uint3 lid [[thread_position_in_threadgroup]],
                                uint simd_gid [[simdgroup_index_in_threadgroup]],
                                uint simd_lid [[thread_index_in_simdgroup]]) {
  for (uint i = lid.x; i < TM * TN; i += 128) tile[i] = 0.0f;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  auto ta = tensor<const device half, dextents<int, 2>, tensor_inline>(a, dextents<int, 2>(TK, TM));
  auto tb = tensor<const device half, dextents<int, 2>, tensor_inline>(bt, dextents<int, 2>(TK, TN));
  auto tc = tensor<threadgroup float, dextents<int, 2>, tensor_inline>(tile, dextents<int, 2>(TN, TM));
  constexpr auto desc = mpp::tensor_ops::matmul2d_descriptor(
      TM, TN, 24, false, true, false, mpp::tensor_ops::matmul2d_descriptor::mode::multiply_accumulate);
  mpp::tensor_ops::matmul2d<desc, execution_simdgroups<4>> op;
  auto a0 = ta.slice(0, 0), b0 = tb.slice(0, 0);
  op.run(a0, b0, tc);
  auto a1 = ta.slice(24, 0), b1 = tb.slice(24, 0);  // the last 16 of K (extents clip the rest)
  op.run(a1, b1, tc);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint i = lid.x; i < TM * TN; i += 128) out[tgid.x * TM * TN + i] = tile[i];
}

// Broken on purpose: assumes thread t holds tile elements t*capacity + i.
[[kernel]] void nax_assumes_layout(const device half* a [[buffer(0)]], const device half* b [[buffer(1)]],
                                   device float* out [[buffer(2)]],
                                   uint3 tgid [[threadgroup_position_in_grid]],
                                   uint3 lid [[thread_position_in_threadgroup]],
                                   uint simd_gid [[simdgroup_index_in_threadgroup]],
                                   uint simd_lid [[thread_index_in_simdgroup]]) {
  auto ta = tensor<const device half, dextents<int, 2>, tensor_inline>(a, dextents<int, 2>(TK, TM));
  auto tb = tensor<const device half, dextents<int, 2>, tensor_inline>(b, dextents<int, 2>(TN, TK));
  constexpr auto desc = mpp::tensor_ops::matmul2d_descriptor(
      TM, TN, static_cast<int>(dynamic_extent), false, false, false,
      mpp::tensor_ops::matmul2d_descriptor::mode::multiply_accumulate);
  mpp::tensor_ops::matmul2d<desc, execution_simdgroups<4>> op;
  auto ct = op.get_destination_cooperative_tensor<decltype(ta), decltype(tb), float>();
  op.run(ta, tb, ct);
  for (int i = 0; i < ct.get_capacity(); ++i)
    if (lid.x * ct.get_capacity() + i < TM * TN) out[tgid.x * TM * TN + lid.x * ct.get_capacity() + i] = ct[i];
}

ONEBIT_EMULATOR_REGISTER("nax_cooperative", nax_cooperative)
ONEBIT_EMULATOR_REGISTER("nax_threadgroup", nax_threadgroup)
ONEBIT_EMULATOR_REGISTER("nax_assumes_layout", nax_assumes_layout)

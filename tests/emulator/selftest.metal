// Kernels that exercise each emulated MSL feature, with known answers.
// Compiled only into the emulator self-test driver (selftest.cpp).
#include <metal_stdlib>
using namespace metal;

// out[tid] = simd_sum, simd_max, shuffles and a quad sum of in[] per lane.
[[kernel]] void collectives(const device float* in [[buffer(0)]], device float* out [[buffer(1)]],
                            uint3 tgid [[threadgroup_position_in_grid]],
                            uint3 lid [[thread_position_in_threadgroup]],
                            uint simd_gid [[simdgroup_index_in_threadgroup]],
                            uint simd_lid [[thread_index_in_simdgroup]]) {
  const uint t = lid.x;
  const float v = in[t];
  out[6 * t + 0] = simd_sum(v);
  out[6 * t + 1] = simd_max(v);
  out[6 * t + 2] = simd_shuffle_down(v, 3);
  out[6 * t + 3] = simd_shuffle_xor(v, 5);
  out[6 * t + 4] = quad_sum(v);
  out[6 * t + 5] = simd_broadcast(v, 7);
}

// Reverses `in` within each threadgroup through threadgroup memory: needs the
// barrier between the writes and the reads to be real.
[[kernel]] void reverse_through_threadgroup(const device float* in [[buffer(0)]],
                                            device float* out [[buffer(1)]],
                                            threadgroup float* scratch [[threadgroup(0)]],
                                            uint3 tgid [[threadgroup_position_in_grid]],
                                            uint3 lid [[thread_position_in_threadgroup]],
                                            uint simd_gid [[simdgroup_index_in_threadgroup]],
                                            uint simd_lid [[thread_index_in_simdgroup]]) {
  const uint n = 96, base = tgid.x * n;
  scratch[lid.x] = in[base + lid.x];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[base + lid.x] = scratch[n - 1 - lid.x];
}

// C (8x8) = A (8x8) * B (8x8) + C with simdgroup matrices.
[[kernel]] void matrix_mma(const device float* a [[buffer(0)]], const device half* b [[buffer(1)]],
                           device float* c [[buffer(2)]],
                           uint3 tgid [[threadgroup_position_in_grid]],
                           uint3 lid [[thread_position_in_threadgroup]],
                           uint simd_gid [[simdgroup_index_in_threadgroup]],
                           uint simd_lid [[thread_index_in_simdgroup]]) {
  simdgroup_matrix<float, 8, 8> ma, mc;
  simdgroup_matrix<half, 8, 8> mb;
  simdgroup_load(ma, a);
  simdgroup_load(mb, b, 8, ulong2(0, 0), true);  // B given transposed
  simdgroup_load(mc, c);
  simdgroup_multiply_accumulate(mc, ma, mb, mc);
  simdgroup_store(mc, c);
}

// Early-exit lanes drop out of later collectives: the sum is over live lanes.
[[kernel]] void partial_sum(device float* out [[buffer(0)]],
                            uint3 tgid [[threadgroup_position_in_grid]],
                            uint3 lid [[thread_position_in_threadgroup]],
                            uint simd_gid [[simdgroup_index_in_threadgroup]],
                            uint simd_lid [[thread_index_in_simdgroup]]) {
  if (simd_lid >= 20) return;
  const float s = simd_sum(float(simd_lid));
  if (simd_lid == 0) out[0] = s;
}

// Broken on purpose: lanes call simd_sum from two different places.
[[kernel]] void divergent(device float* out [[buffer(0)]],
                          uint3 tgid [[threadgroup_position_in_grid]],
                          uint3 lid [[thread_position_in_threadgroup]],
                          uint simd_gid [[simdgroup_index_in_threadgroup]],
                          uint simd_lid [[thread_index_in_simdgroup]]) {
  float v;
  if (simd_lid < 16) {
    v = simd_sum(1.0f);
  } else {
    v = simd_sum(2.0f);
  }
  out[simd_lid] = v;
}

// Broken on purpose: the two simdgroups wait at different barriers.
[[kernel]] void mismatched_barriers(device float* out [[buffer(0)]],
                                    uint3 tgid [[threadgroup_position_in_grid]],
                                    uint3 lid [[thread_position_in_threadgroup]],
                                    uint simd_gid [[simdgroup_index_in_threadgroup]],
                                    uint simd_lid [[thread_index_in_simdgroup]]) {
  if (simd_gid == 0) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  } else {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  out[lid.x] = 1.0f;
}

// Broken on purpose: one simdgroup waits at a barrier the other never reaches
// because it waits at a simdgroup collective that the first never calls.
[[kernel]] void barrier_vs_simd(device float* out [[buffer(0)]],
                                uint3 tgid [[threadgroup_position_in_grid]],
                                uint3 lid [[thread_position_in_threadgroup]],
                                uint simd_gid [[simdgroup_index_in_threadgroup]],
                                uint simd_lid [[thread_index_in_simdgroup]]) {
  float v = 1.0f;
  if (simd_gid == 0 || simd_lid < 4) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  } else {
    v = simd_sum(v);
  }
  out[lid.x] = v;
}

// Broken on purpose: reads a lane that already returned.
[[kernel]] void reads_dead_lane(device float* out [[buffer(0)]],
                                uint3 tgid [[threadgroup_position_in_grid]],
                                uint3 lid [[thread_position_in_threadgroup]],
                                uint simd_gid [[simdgroup_index_in_threadgroup]],
                                uint simd_lid [[thread_index_in_simdgroup]]) {
  if (simd_lid == 31) return;
  out[simd_lid] = simd_shuffle_down(float(simd_lid), 1);
}

// A simdgroup matrix load whose arguments differ across lanes (lane 5's origin).
[[kernel]] void nonuniform_load(device float* out [[buffer(0)]],
                                uint3 tgid [[threadgroup_position_in_grid]],
                                uint3 lid [[thread_position_in_threadgroup]],
                                uint simd_gid [[simdgroup_index_in_threadgroup]],
                                uint simd_lid [[thread_index_in_simdgroup]]) {
  simdgroup_matrix<float, 8, 8> m;
  simdgroup_load(m, out, 8, ulong2(simd_lid == 5 ? 1 : 0, 0));
}

// half arithmetic rounds per operation.
[[kernel]] void half_math(const device half* in [[buffer(0)]], device half* out [[buffer(1)]],
                          uint3 tgid [[threadgroup_position_in_grid]],
                          uint3 lid [[thread_position_in_threadgroup]],
                          uint simd_gid [[simdgroup_index_in_threadgroup]],
                          uint simd_lid [[thread_index_in_simdgroup]]) {
  const half a = in[0], b = in[1];
  out[0] = a + b;
  out[1] = a * b;
  out[2] = half(float(a) * 3.0f);
}

ONEBIT_EMULATOR_REGISTER("collectives", collectives)
ONEBIT_EMULATOR_REGISTER("reverse_through_threadgroup", reverse_through_threadgroup)
ONEBIT_EMULATOR_REGISTER("matrix_mma", matrix_mma)
ONEBIT_EMULATOR_REGISTER("partial_sum", partial_sum)
ONEBIT_EMULATOR_REGISTER("divergent", divergent)
ONEBIT_EMULATOR_REGISTER("mismatched_barriers", mismatched_barriers)
ONEBIT_EMULATOR_REGISTER("barrier_vs_simd", barrier_vs_simd)
ONEBIT_EMULATOR_REGISTER("reads_dead_lane", reads_dead_lane)
ONEBIT_EMULATOR_REGISTER("nonuniform_load", nonuniform_load)
ONEBIT_EMULATOR_REGISTER("half_math", half_math)

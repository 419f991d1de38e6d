// Matrix-vector kernels, transpose=True, M = 1: y[n] = sum_k x[k] * W_hat[n, k]
// with W packed along K. Batches run on tgid.z.
//
//   qmv_fast  K a multiple of qmv_block_k(bits), N of kQmvRowsPerThreadgroup:
//             no bounds checks.
//   qmv       any K (a multiple of group_size) and N: the same loop with
//             per-segment K checks and clamped rows.
//   qmv_quad  small K (64, 128): a quad of lanes per row instead of a
//             simdgroup, so lanes are not idle when K is short.
#pragma once

#include "abi.h"
#include "codes.h"
#include "geometry.h"

namespace onebit {
namespace shader {

// The packed row, scales and biases of each of R rows, located once with
// 64-bit arithmetic so that the K loop only adds 32-bit offsets to them.
template <typename T, int R>
struct RowOperands {
  const device uint8_t* w[R];
  const device T* scales[R];
  const device T* biases[R];
};

template <typename T, int R>
inline RowOperands<T, R> row_operands(const thread MatmulOperands<T>& op, const thread int* rows) {
  RowOperands<T, R> ro;
  for (int r = 0; r < R; ++r) {
    ro.w[r] = op.w + long(rows[r]) * op.row_bytes;
    ro.scales[r] = op.scales + long(rows[r]) * op.row_groups;
    ro.biases[r] = op.biases + long(rows[r]) * op.row_groups;
  }
  return ro;
}

// Adds, for each of R rows, the contribution of n activations starting at k
// (all inside one group) to acc[r]. `xs` holds the n activations, `xsum`
// their sum, shared by all rows.
template <typename T, int group_size, int bits, bool symmetric, int R, int n>
inline void accumulate_rows(const thread RowOperands<T, R>& ro, int k, const thread float* xs,
                            float xsum, thread float* acc) {
  for (int r = 0; r < R; ++r) {
    const GroupCoef c = group_coef<T, symmetric>(ro.scales[r], ro.biases[r], k / group_size);
    const CodeRun<bits, n> run = load_run<bits, n>(ro.w[r], uint(k));
    acc[r] += c.q * dot_codes(run, xs) + c.one * xsum;
  }
}

// One simdgroup computes kQmvRowsPerSimdgroup rows. Lane l handles values
// [l*V, (l+1)*V) of every block of 32*V, V = qmv_values_per_lane(bits).
// Those V values are cut into segments of min(V, group_size): with 1 bit
// (V = 64) and group_size 32 a lane's values span two groups, each with its
// own scale and bias. K is a multiple of group_size, hence of the segment, so
// a segment is entirely inside or outside K: `safe` checks per segment.
template <typename T, int group_size, int bits, bool symmetric, bool safe>
inline void qmv_impl(const thread MatmulOperands<T>& op, uint3 tgid, uint simd_gid, uint simd_lid) {
  constexpr int R = kQmvRowsPerSimdgroup;
  constexpr int V = qmv_values_per_lane(bits);
  constexpr int seg = V < group_size ? V : group_size;
  const int row0 = (int(tgid.x) * kQmvSimdgroups + int(simd_gid)) * R;
  // Rows past N (safe only) recompute row N-1 and are not stored: every lane
  // stays on the same path to simd_sum.
  int rows[R];
  for (int r = 0; r < R; ++r) rows[r] = safe && row0 + r >= op.N ? op.N - 1 : row0 + r;

  const RowOperands<T, R> ro = row_operands<T, R>(op, rows);
  float acc[R];
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  // int k: K < 2^30 (planner.cpp kMaxDim), so k + 32 * V cannot overflow.
  for (int k = int(simd_lid) * V; k < op.K; k += kSimdWidth * V) {
    for (int s = 0; s < V / seg; ++s) {
      const int ks = k + s * seg;
      if (safe && ks >= op.K) break;
      float xs[seg];
      const float xsum = load_x<T, seg>(op.x + ks, xs);
      accumulate_rows<T, group_size, bits, symmetric, R, seg>(ro, ks, xs, xsum, acc);
    }
  }
  for (int r = 0; r < R; ++r) {
    const float total = simd_sum(acc[r]);
    if (simd_lid == 0 && (!safe || row0 + r < op.N)) op.y[row0 + r] = T(total);
  }
}

// A quad (4 consecutive lanes) computes kQuadRows rows; lane q of the quad
// handles values [q*16, q*16+16) of each 64-value step, a run inside one group
// (group_size >= 32). With K = 64 and 1 bit a lane's run is 2 bytes, half a
// word: load_run reads such runs byte by byte.
template <typename T, int group_size, int bits, bool symmetric>
inline void qmv_quad_impl(const thread MatmulOperands<T>& op, uint3 tgid, uint simd_gid,
                          uint simd_lid) {
  constexpr int R = kQuadRows;
  constexpr int V = kQuadValuesPerLane;
  const int quad = int(simd_gid) * (kSimdWidth / kQuadWidth) + int(simd_lid) / kQuadWidth;
  const int lane = int(simd_lid) % kQuadWidth;
  const int row0 = int(tgid.x) * kQuadRowsPerThreadgroup + quad * R;
  int rows[R];
  for (int r = 0; r < R; ++r) rows[r] = row0 + r < op.N ? row0 + r : op.N - 1;  // stored if < N

  const RowOperands<T, R> ro = row_operands<T, R>(op, rows);
  float acc[R];
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  for (int k = lane * V; k < op.K; k += kQuadWidth * V) {
    float xs[V];
    const float xsum = load_x<T, V>(op.x + k, xs);
    accumulate_rows<T, group_size, bits, symmetric, R, V>(ro, k, xs, xsum, acc);
  }
  for (int r = 0; r < R; ++r) {
    const float total = quad_sum(acc[r]);
    if (lane == 0 && row0 + r < op.N) op.y[row0 + r] = T(total);
  }
}

}  // namespace shader
}  // namespace onebit

template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void qmv_fast(ONEBIT_MATMUL_BUFFERS(T), ONEBIT_THREAD_POSITION) {
  onebit::shader::qmv_impl<T, group_size, bits, symmetric, false>(ONEBIT_BATCH_OPERANDS(true),
                                                                   tgid, simd_gid, simd_lid);
}

template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void qmv(ONEBIT_MATMUL_BUFFERS(T), ONEBIT_THREAD_POSITION) {
  onebit::shader::qmv_impl<T, group_size, bits, symmetric, true>(ONEBIT_BATCH_OPERANDS(true),
                                                                  tgid, simd_gid, simd_lid);
}

template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void qmv_quad(ONEBIT_MATMUL_BUFFERS(T), ONEBIT_THREAD_POSITION) {
  onebit::shader::qmv_quad_impl<T, group_size, bits, symmetric>(ONEBIT_BATCH_OPERANDS(true), tgid,
                                                                simd_gid, simd_lid);
}

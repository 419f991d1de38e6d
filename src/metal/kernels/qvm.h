// Vector-matrix kernels, transpose=False, M = 1: y[n] = sum_k x[k] * W_hat[k, n]
// with W of shape (K, N) packed along N (N is a multiple of group_size).
// Batches run on tgid.z.
//
// A simdgroup owns kQvmColumnsPerSimdgroup = 128 columns: lane l works on
// column pack (l % 4) (32 columns, inside one group) and on the rows
// k = l / 4 (mod 8) of its K range, with one scale and bias per row.
//
// Here the group algebra (bias term factored out) does not pay: each x_k
// meets one code per column, so nothing is shared, and factoring
// x_k*scale*code + x_k*bias loses accuracy where W_hat is near zero (a grid
// point of the 2..8-bit quantizer) with few rows to average it out (K is
// free here, possibly 1). Each weight is formed as fma(scale, code, bias),
// one rounding relative to W_hat itself, then multiplied by x_k.
//
//   qvm          each of kQvmSimdgroups simdgroups takes its own 128 columns
//                and all of K.
//   qvm_split_k  long K: kQvmSplitSimdgroups simdgroups share 128 columns and
//                split K into contiguous slices. Their partial sums meet in
//                threadgroup memory and are added in simdgroup order: one
//                dispatch, no atomics, deterministic.
#pragma once

#include "abi.h"
#include "codes.h"
#include "geometry.h"

namespace onebit {
namespace shader {

// Sums of the 32 columns of this lane's pack over rows [k_begin, k_end),
// reduced over the simdgroup's K lanes: on return lanes with l / 4 == 0 hold
// the column totals in acc. `col` is the first column of the lane's pack,
// already clamped inside N.
template <typename T, int group_size, int bits, bool symmetric>
inline void qvm_columns(const thread MatmulOperands<T>& op, int col, int k_begin, int k_end,
                        uint simd_lid, thread float* acc) {
  for (int i = 0; i < kPackValues; ++i) acc[i] = 0.0f;
  // The lane's first row is located once (64-bit); each step advances the
  // pointers by kQvmLanesK rows, so the loop itself does no 64-bit multiply.
  const int k_first = k_begin + int(simd_lid / kQvmLanesN);
  const long group = long(k_first) * op.row_groups + col / group_size;
  const device uint8_t* w = op.w + long(k_first) * op.row_bytes;
  const device T* scales = op.scales + group;
  const device T* biases = op.biases + group;
  const long w_step = kQvmLanesK * op.row_bytes, g_step = long(kQvmLanesK) * op.row_groups;
  for (int k = k_first; k < k_end; k += kQvmLanesK, w += w_step, scales += g_step, biases += g_step) {
    const float xk = float(op.x[k]);
    const GroupCoef c = group_coef<T, symmetric>(scales, biases, 0);
    const CodeRun<bits, kPackValues> run = load_run<bits, kPackValues>(w, uint(col));
    for (int i = 0; i < kPackValues; ++i) acc[i] += xk * dequantize_code(c, code(run, i));
  }
  // Lanes l, l^4, l^8, l^16 share the columns: a butterfly over the K lanes.
  for (int i = 0; i < kPackValues; ++i)
    for (int mask = kQvmLanesN; mask < kSimdWidth; mask *= 2)
      acc[i] += simd_shuffle_xor(acc[i], ushort(mask));
}

// First column of the lane's pack in a block of 128 columns, and whether it
// is inside N. N is a multiple of 32, so a pack is all in or all out; an out
// pack reads the last pack (valid memory, same control flow) and is dropped.
inline int qvm_pack_column(int block, uint simd_lid, int N, thread bool& valid) {
  const int col = block * kQvmColumnsPerSimdgroup + int(simd_lid % kQvmLanesN) * kPackValues;
  valid = col < N;
  return valid ? col : N - kPackValues;
}

template <typename T, int group_size, int bits, bool symmetric>
inline void qvm_impl(const thread MatmulOperands<T>& op, uint3 tgid, uint simd_gid, uint simd_lid) {
  bool valid;
  const int col = qvm_pack_column(int(tgid.x) * kQvmSimdgroups + int(simd_gid), simd_lid, op.N, valid);
  float acc[kPackValues];
  qvm_columns<T, group_size, bits, symmetric>(op, col, 0, op.K, simd_lid, acc);
  if (valid && simd_lid < kQvmLanesN)
    for (int i = 0; i < kPackValues; ++i) op.y[col + i] = T(acc[i]);
}

// partials: kQvmSplitSimdgroups x kQvmColumnsPerSimdgroup floats.
template <typename T, int group_size, int bits, bool symmetric>
inline void qvm_split_k_impl(const thread MatmulOperands<T>& op, threadgroup float* partials,
                             uint3 tgid, uint3 lid, uint simd_gid, uint simd_lid) {
  bool valid;
  const int col = qvm_pack_column(int(tgid.x), simd_lid, op.N, valid);
  // Contiguous slices of K, one per simdgroup (the last ones may be empty).
  const int slice = (op.K + kQvmSplitSimdgroups - 1) / kQvmSplitSimdgroups;
  const int k_begin = int(simd_gid) * slice;
  const int k_end = k_begin + slice < op.K ? k_begin + slice : op.K;
  float acc[kPackValues];
  qvm_columns<T, group_size, bits, symmetric>(op, col, k_begin, k_end, simd_lid, acc);
  if (simd_lid < kQvmLanesN)
    for (int i = 0; i < kPackValues; ++i)
      partials[int(simd_gid) * kQvmColumnsPerSimdgroup + int(simd_lid) * kPackValues + i] = acc[i];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  const int t = int(lid.x);  // threads are (32 * kQvmSplitSimdgroups, 1, 1)
  const int out = int(tgid.x) * kQvmColumnsPerSimdgroup + t;
  if (t < kQvmColumnsPerSimdgroup && out < op.N) {
    float total = 0.0f;
    for (int s = 0; s < kQvmSplitSimdgroups; ++s) total += partials[s * kQvmColumnsPerSimdgroup + t];
    op.y[out] = T(total);
  }
}

}  // namespace shader
}  // namespace onebit

template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void qvm(ONEBIT_MATMUL_BUFFERS(T), ONEBIT_THREAD_POSITION) {
  onebit::shader::qvm_impl<T, group_size, bits, symmetric>(ONEBIT_BATCH_OPERANDS(false), tgid,
                                                           simd_gid, simd_lid);
}

template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void qvm_split_k(ONEBIT_MATMUL_BUFFERS(T), threadgroup float* partials [[threadgroup(0)]],
                            ONEBIT_THREAD_POSITION) {
  onebit::shader::qvm_split_k_impl<T, group_size, bits, symmetric>(
      ONEBIT_BATCH_OPERANDS(false), partials, tgid, lid, simd_gid, simd_lid);
}

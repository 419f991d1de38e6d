// Matrix-matrix kernels (M > 1), tiled: each threadgroup computes a
// kQmmBM x kQmmBN tile of y. Per K step of kQmmBK it stages the x tile and the
// dequantized W tile in threadgroup memory, then 4 simdgroups multiply them
// with simdgroup_matrix 8x8 operations into float32 accumulators.
//
//   qmm_t  transpose=True:  y = x @ W_hat.T, W (N, K) packed along K.
//   qmm_n  transpose=False: y = x @ W_hat,   W (K, N) packed along N.
//
// The tiles are float32: x widened exactly, W_hat formed in float32 with one
// rounding (dequantize_code) and never rounded to T, so the result differs
// from x @ W_hat only by float32 rounding (the contract of README.md). The W tile is stored
// k-major (w_tile[k * BN + n]) for both kernels so the B operand loads without
// a transposed simdgroup_load.
//
// Tails: rows of x past M, rows of W past N (qmm_t) and K past K (qmm_n,
// where K is free) are staged as zeros and never stored. The packed axis
// (K for qmm_t, N for qmm_n) is a multiple of group_size >= BK, so it has none.
#pragma once

#include "abi.h"
#include "codes.h"
#include "geometry.h"

namespace onebit {
namespace shader {

// Thread t of the threadgroup stages kQmmLoadRun consecutive values of row
// t / 4 of a 32-wide tile: a run of 8 codes starts on a byte boundary and lies
// inside one group.
constexpr int kQmmRunsPerRow = kQmmBK / kQmmLoadRun;

template <typename T>
inline void stage_x_tile(const thread MatmulOperands<T>& op, threadgroup float* x_tile, int m0,
                         int k0, int t) {
  const int r = t / kQmmRunsPerRow, c = (t % kQmmRunsPerRow) * kQmmLoadRun;
  const bool row_ok = m0 + r < op.M;
  for (int i = 0; i < kQmmLoadRun; ++i) {
    const bool ok = row_ok && k0 + c + i < op.K;
    x_tile[r * kQmmBK + c + i] = ok ? float(op.x[long(m0 + r) * op.K + k0 + c + i]) : 0.0f;
  }
}

// Dequantizes kQmmLoadRun codes of packed row `row` from element `start` into
// the tile at `dst`, stride `step` apart (zeros if the row does not exist).
template <typename T, int group_size, int bits, bool symmetric>
inline void stage_w_run(const thread MatmulOperands<T>& op, int row, bool row_ok, int start,
                        threadgroup float* dst, int step) {
  if (!row_ok) {
    for (int i = 0; i < kQmmLoadRun; ++i) dst[i * step] = 0.0f;
    return;
  }
  const GroupCoef c = group_coef<T, symmetric>(op.scales, op.biases,
                                               long(row) * op.row_groups + start / group_size);
  const CodeRun<bits, kQmmLoadRun> run = load_run<bits, kQmmLoadRun>(op.w + row * op.row_bytes, start);
  for (int i = 0; i < kQmmLoadRun; ++i) dst[i * step] = dequantize_code(c, code(run, i));
}

template <typename T, int group_size, int bits, bool symmetric, bool transposed>
inline void stage_w_tile(const thread MatmulOperands<T>& op, threadgroup float* w_tile, int n0,
                         int k0, int t) {
  const int r = t / kQmmRunsPerRow, c = (t % kQmmRunsPerRow) * kQmmLoadRun;
  if (transposed)  // packed row n0 + r holds column n of W_hat.T: scatter down tile column r
    stage_w_run<T, group_size, bits, symmetric>(op, n0 + r, n0 + r < op.N, k0 + c,
                                                w_tile + c * kQmmBN + r, kQmmBN);
  else  // packed row k0 + r is tile row r
    stage_w_run<T, group_size, bits, symmetric>(op, k0 + r, k0 + r < op.K, n0 + c,
                                                w_tile + r * kQmmBN + c, 1);
}

// x_tile: BM x BK, w_tile: BK x BN, y_tile: BM x BN floats.
template <typename T, int group_size, int bits, bool symmetric, bool transposed>
inline void qmm_impl(const thread MatmulOperands<T>& op, threadgroup float* x_tile,
                     threadgroup float* w_tile, threadgroup float* y_tile, uint3 tgid, uint3 lid,
                     uint simd_gid) {
  const int t = int(lid.x);  // threads are (kQmmThreads, 1, 1)
  const int m0 = int(tgid.y) * kQmmBM, n0 = int(tgid.x) * kQmmBN;
  // Simdgroups 0..3 own the 16x16 quarters of the tile, row-major.
  const int sm = int(simd_gid / 2) * 16, sn = int(simd_gid % 2) * 16;

  simdgroup_matrix<float, 8, 8> acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);

  for (int k0 = 0; k0 < op.K; k0 += kQmmBK) {
    stage_x_tile<T>(op, x_tile, m0, k0, t);
    stage_w_tile<T, group_size, bits, symmetric, transposed>(op, w_tile, n0, k0, t);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (int kk = 0; kk < kQmmBK; kk += 8) {
      simdgroup_matrix<float, 8, 8> a[2], b[2];
      for (int i = 0; i < 2; ++i) simdgroup_load(a[i], x_tile + (sm + 8 * i) * kQmmBK + kk, kQmmBK);
      for (int j = 0; j < 2; ++j) simdgroup_load(b[j], w_tile + kk * kQmmBN + sn + 8 * j, kQmmBN);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);
    }
    // The next step overwrites the tiles the simdgroups are reading.
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }

  // Through threadgroup memory: simdgroup_store writes the accumulator's own
  // element type, and the edges of y need per-element bounds checks.
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      simdgroup_store(acc[i][j], y_tile + (sm + 8 * i) * kQmmBN + sn + 8 * j, kQmmBN);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  const int r = t / kQmmRunsPerRow, c = (t % kQmmRunsPerRow) * kQmmLoadRun;
  if (m0 + r < op.M)
    for (int i = 0; i < kQmmLoadRun; ++i)
      if (n0 + c + i < op.N) op.y[long(m0 + r) * op.N + n0 + c + i] = T(y_tile[r * kQmmBN + c + i]);
}

}  // namespace shader
}  // namespace onebit

// Threadgroup memory: [[threadgroup(0)]] x tile (BM x BK), (1) W tile
// (BK x BN), (2) y tile (BM x BN), all float.
#define ONEBIT_QMM_TILES                               \
  threadgroup float* x_tile [[threadgroup(0)]],        \
      threadgroup float* w_tile [[threadgroup(1)]],    \
      threadgroup float* y_tile [[threadgroup(2)]]

template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void qmm_t(ONEBIT_MATMUL_BUFFERS(T), ONEBIT_QMM_TILES, ONEBIT_THREAD_POSITION) {
  onebit::shader::qmm_impl<T, group_size, bits, symmetric, true>(
      ONEBIT_BATCH_OPERANDS(true), x_tile, w_tile, y_tile, tgid, lid, simd_gid);
}

template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void qmm_n(ONEBIT_MATMUL_BUFFERS(T), ONEBIT_QMM_TILES, ONEBIT_THREAD_POSITION) {
  onebit::shader::qmm_impl<T, group_size, bits, symmetric, false>(
      ONEBIT_BATCH_OPERANDS(false), x_tile, w_tile, y_tile, tgid, lid, simd_gid);
}

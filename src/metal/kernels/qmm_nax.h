// qmm_t_nax: the matrix-matrix product (transpose=True, M > 1) on the neural
// accelerators of M5-class GPUs ("NAX"), through Metal 4 tensor operations
// (MetalPerformancePrimitives matmul2d).
//
// The tensor op multiplies half or bfloat operands into float32. Rounding
// W_hat to half would break the contract that the result differs from
// x @ W_hat only by float32 rounding, so the op never sees W_hat. It sees
// the integer codes instead, which half and bfloat hold exactly (codes are
// at most 255), and the activations, which already are T. Per group g of K:
//
//   sum_k x[m,k] W_hat[n,k] = q[n,g] * P[m,n] + one[n,g] * S[m]
//   P = x_tile (32 x group) @ codes_tile^T (group x 32),  S[m] = sum_k x[m,k]
//
// with (q, one) the group's affine coefficients (codes.h GroupCoef). Each step
// of K is one group: the op forms P in a cooperative tensor, and every thread
// folds its own elements of P into an accumulator of the same layout, finding
// each element's (column, row) with get_multidimensional_index, never assuming
// how elements map to threads.
//
// There is no qmm_n_nax: with transpose=False the groups run along N, so the
// coefficients change along K and cannot be taken out of the K sum; the
// tensor op would need W_hat itself, rounded to half. qmm_n keeps the
// simdgroup_matrix path, which forms W_hat in float32.
//
// float32 activations are not offered either (the op takes half/bfloat): the
// planner keeps them on qmm_t.
#pragma once

#include <metal_stdlib>
#include <metal_tensor>
#include <MetalPerformancePrimitives/MetalPerformancePrimitives.h>

#include "abi.h"
#include "codes.h"
#include "geometry.h"

namespace onebit {
namespace shader {

// Thread t stages group_size / kNaxThreadsPerRow consecutive values of tile
// row t / kNaxThreadsPerRow: a run of 8, 16 or 32 codes starting at a
// multiple of its length, as codes.h load_run requires.
template <int group_size>
constexpr int nax_run() {
  return group_size / kNaxThreadsPerRow;
}

// x tile (kNaxBM x group_size, row-major, as T: exact) and its row sums.
template <typename T, int group_size>
inline void nax_stage_x(const thread MatmulOperands<T>& op, threadgroup T* x_tile,
                        threadgroup float* x_sums, int m0, int k0, int t) {
  constexpr int run = nax_run<group_size>();
  const int r = t / kNaxThreadsPerRow, c = (t % kNaxThreadsPerRow) * run;
  const bool row_ok = m0 + r < op.M;
  float sum = 0.0f;
  for (int i = 0; i < run; ++i) {
    const T v = row_ok ? op.x[long(m0 + r) * op.K + k0 + c + i] : T(0);
    x_tile[r * group_size + c + i] = v;
    sum += float(v);
  }
  // The kNaxThreadsPerRow (= 4) threads of a row are one quad.
  sum = quad_sum(sum);
  if (t % kNaxThreadsPerRow == 0) x_sums[r] = sum;
}

// Codes tile: row n holds the group's codes of W row n0 + n (zeros past N),
// as T, row-major (group_size values per row).
template <typename T, int group_size, int bits>
inline void nax_stage_codes(const thread MatmulOperands<T>& op, threadgroup T* codes_tile, int n0,
                            int k0, int t) {
  constexpr int run = nax_run<group_size>();
  const int n = t / kNaxThreadsPerRow, c = (t % kNaxThreadsPerRow) * run;
  threadgroup T* dst = codes_tile + n * group_size + c;
  if (n0 + n >= op.N) {
    for (int i = 0; i < run; ++i) dst[i] = T(0);
    return;
  }
  const CodeRun<bits, run> codes = load_run<bits, run>(op.w + long(n0 + n) * op.row_bytes, k0 + c);
  for (int i = 0; i < run; ++i) dst[i] = T(code(codes, i));
}

template <typename T, int group_size, int bits, bool symmetric>
inline void qmm_t_nax_impl(const thread MatmulOperands<T>& op, threadgroup T* x_tile,
                           threadgroup T* codes_tile, threadgroup float* x_sums, uint3 tgid,
                           uint3 lid) {
  const int t = int(lid.x);  // threads are (kNaxThreads, 1, 1)
  const int m0 = int(tgid.y) * kNaxBM, n0 = int(tgid.x) * kNaxBN;

  // A = x tile (kNaxBM x group), B = codes tile read transposed (its rows
  // are the columns of B); tensors are indexed [column, row].
  auto a = tensor<threadgroup T, dextents<int, 2>, tensor_inline>(
      x_tile, dextents<int, 2>(group_size, kNaxBM));
  auto b = tensor<threadgroup T, dextents<int, 2>, tensor_inline>(
      codes_tile, dextents<int, 2>(group_size, kNaxBN));
  constexpr auto desc = mpp::tensor_ops::matmul2d_descriptor(
      kNaxBM, kNaxBN, group_size, /*transpose_left=*/false, /*transpose_right=*/true,
      /*relaxed_precision=*/false, mpp::tensor_ops::matmul2d_descriptor::mode::multiply);
  mpp::tensor_ops::matmul2d<desc, execution_simdgroups<kNaxSimdgroups>> matmul;
  auto part = matmul.template get_destination_cooperative_tensor<decltype(a), decltype(b), float>();
  auto acc = matmul.template get_destination_cooperative_tensor<decltype(a), decltype(b), float>();
  for (int i = 0; i < acc.get_capacity(); ++i)
    if (acc.is_valid_element(i)) acc[i] = 0.0f;

  for (int k0 = 0, g = 0; k0 < op.K; k0 += group_size, ++g) {
    nax_stage_x<T, group_size>(op, x_tile, x_sums, m0, k0, t);
    nax_stage_codes<T, group_size, bits>(op, codes_tile, n0, k0, t);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    // Apple's header does not settle whether mode::multiply overwrites its
    // destination or adds to it ("Assumes C is initialized to zero"):
    // cleared before every run, `part` is this group's product either way.
    for (int i = 0; i < part.get_capacity(); ++i)
      if (part.is_valid_element(i)) part[i] = 0.0f;
    matmul.run(a, b, part);
    for (int i = 0; i < part.get_capacity(); ++i) {
      if (!part.is_valid_element(i)) continue;
      const auto ix = part.get_multidimensional_index(i);  // (column n, row m) in the tile
      if (n0 + ix[0] >= op.N) continue;
      const GroupCoef c =
          group_coef<T, symmetric>(op.scales, op.biases, long(n0 + ix[0]) * op.row_groups + g);
      acc[i] += c.q * part[i] + c.one * x_sums[ix[1]];
    }
    // The next step overwrites the tiles and sums the op and loop just read.
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }

  // Stored element by element with an explicit conversion to T, rather than
  // through cooperative_tensor::store into a T tensor, whose float -> T
  // conversion Apple's header does not specify.
  for (int i = 0; i < acc.get_capacity(); ++i) {
    if (!acc.is_valid_element(i)) continue;
    const auto ix = acc.get_multidimensional_index(i);
    const int n = n0 + ix[0], m = m0 + ix[1];
    if (n < op.N && m < op.M) op.y[long(m) * op.N + n] = T(acc[i]);
  }
}

}  // namespace shader
}  // namespace onebit

// Threadgroup memory: [[threadgroup(0)]] x tile (BM x group_size, T),
// (1) codes tile (BN x group_size, T), (2) row sums of the x tile (BM floats).
template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void qmm_t_nax(ONEBIT_MATMUL_BUFFERS(T), threadgroup T* x_tile [[threadgroup(0)]],
                          threadgroup T* codes_tile [[threadgroup(1)]],
                          threadgroup float* x_sums [[threadgroup(2)]], ONEBIT_THREAD_POSITION) {
  onebit::shader::qmm_t_nax_impl<T, group_size, bits, symmetric>(
      ONEBIT_BATCH_OPERANDS(true), x_tile, codes_tile, x_sums, tgid, lid);
}

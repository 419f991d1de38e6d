// The general kernel, for any M and both transposes: 64 x 64 output tiles,
// x and dequantized W staged through shared memory in float32, 4 x 4
// outputs per thread on the CUDA cores (float32 activations stay exact).
#pragma once

#include "codes.cuh"

namespace onebit {
namespace cuda {

constexpr int kTileM = 64, kTileN = 64, kTileK = 32, kTileThreads = 256;

// TRANS: W_hat is (N, K) packed along K (x @ W_hat^T); else (K, N) packed along N.
template <int BITS, bool TRANS, class X, class S>
__global__ void __launch_bounds__(kTileThreads) qmm_simt(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  // +1 column: consecutive threads store down a column of xs without bank conflicts.
  __shared__ float xs[kTileK][kTileM + 1];
  __shared__ float ws[kTileK][kTileN + 1];
  const X* x = static_cast<const X*>(a.x);
  const S* scales = static_cast<const S*>(a.scales);
  const S* biases = static_cast<const S*>(a.biases);
  const int m0 = blockIdx.x * kTileM, n0 = blockIdx.y * kTileN;
  const int tid = threadIdx.x, tm = tid / 16, tn = tid % 16;
  const std::int64_t packed = TRANS ? a.K : a.N;  // elements per packed row
  const std::int64_t words = packed * BITS / 32;
  const std::int64_t groups = packed / a.group_size;

  wait_for_previous_kernel();
  allow_next_kernel();
  float acc[4][4] = {};
  for (int k0 = 0; k0 < a.K; k0 += kTileK) {
    for (int i = tid; i < kTileM * kTileK; i += kTileThreads) {
      const int mm = i / kTileK, kk = i % kTileK, m = m0 + mm, k = k0 + kk;
      xs[kk][mm] = m < a.M && k < a.K ? to_float(x[static_cast<std::int64_t>(m) * a.K + k]) : 0.f;
    }
    for (int i = tid; i < kTileN * kTileK; i += kTileThreads) {
      // Consecutive threads take consecutive elements of a packed row.
      const int nn = TRANS ? i / kTileK : i % kTileN, kk = TRANS ? i % kTileK : i / kTileN;
      const int n = n0 + nn, k = k0 + kk;
      float w = 0.f;
      if (n < a.N && k < a.K) {
        const std::int64_t row = TRANS ? n : k, e = TRANS ? k : n;
        const std::int64_t g = row * groups + e / a.group_size;
        w = dequant(code_at<BITS>(a.wq + row * words, e), to_float(scales[g]),
                    a.symmetric ? 0.f : to_float(biases[g]), a.symmetric);
      }
      ws[kk][nn] = w;
    }
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kTileK; ++kk) {
      float xv[4], wv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) xv[i] = xs[kk][tm + 16 * i], wv[i] = ws[kk][tn + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(xv[i], wv[j], acc[i][j]);
    }
    __syncthreads();
  }

  O* out = static_cast<O*>(a.out);
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + tm + 16 * i, n = n0 + tn + 16 * j;
      if (m < a.M && n < a.N) out[static_cast<std::int64_t>(m) * a.N + n] = from_float<O>(acc[i][j]);
    }
}

}  // namespace cuda
}  // namespace onebit

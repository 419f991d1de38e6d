// Tensor-core kernel for x @ W_hat^T with bfloat16 activations and M > 8: 64 x 64 output
// tiles, K in steps of 32, x and W_hat staged in shared memory, mma.sync m16n8k16 with
// float32 accumulation. W_hat is formed in float32 (scale * q + bias, as the reference)
// and split into three bfloat16 parts, w = p0 + p1 * 2^-8 + p2 * 2^-16 (each part the
// rounded remainder of the last, scaled up by 2^8), each multiplied by the exact bfloat16
// x in its own accumulator: the products are exact and the split is off by ~2^-24 |w|, so
// the result keeps the float32 kernels' error bound (tests/error_bound.py).
#pragma once

#include "mma.cuh"

namespace onebit {
namespace cuda {

constexpr int kTcM = 64, kTcN = 64, kTcK = 32, kTcThreads = 128;
constexpr int kTcPad = 8;  // halves per smem row beyond kTcK: fragment loads hit 32 banks

constexpr int kTcParts = 3;  // bfloat16 parts of each W_hat value

// The kTcParts bfloat16 parts of w (see above), each as the raw 16 bits.
__device__ __forceinline__ void split_bf16(float w, std::uint16_t (&parts)[kTcParts]) {
#pragma unroll
  for (int i = 0; i < kTcParts; ++i) {
    const __nv_bfloat16 p = __float2bfloat16_rn(w);
    parts[i] = *reinterpret_cast<const std::uint16_t*>(&p);
    w = (w - __bfloat162float(p)) * 256.f;  // exact: the rounding error of p, scaled
  }
}

// Two consecutive bfloat16 values of a shared-memory row as one register.
__device__ __forceinline__ std::uint32_t pair_at(const std::uint16_t* p) {
  return *reinterpret_cast<const std::uint32_t*>(p);
}

// x rows 16-byte aligned (the host checks).
template <int BITS, class S>
__global__ void __launch_bounds__(kTcThreads) qmm_tc_t(KernelArgs a) {
  using O = typename OutType<__nv_bfloat16, S>::type;
  __shared__ __align__(16) std::uint16_t xs[kTcM][kTcK + kTcPad];
  __shared__ __align__(16) std::uint16_t ws[kTcParts][kTcN][kTcK + kTcPad];
  const __nv_bfloat16* x = static_cast<const __nv_bfloat16*>(a.x);
  const S* scales = static_cast<const S*>(a.scales);
  const S* biases = static_cast<const S*>(a.biases);
  const int m0 = blockIdx.x * kTcM, n0 = blockIdx.y * kTcN;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t = lane & 3;      // the mma fragment's row group and column pair
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;  // this warp's 32 x 32 of the tile
  const std::int64_t words = static_cast<std::int64_t>(a.K) * BITS / 32;  // per row of W
  const int groups = a.K / a.group_size;
  // Staging: thread tid fills 16 elements of row tid / 2 of each tile.
  const int srow = tid >> 1, scol = (tid & 1) * 16;

  wait_for_previous_kernel();
  allow_next_kernel();
  float acc[kTcParts][2][4][4] = {};
  for (int k0 = 0; k0 < a.K; k0 += kTcK) {
    {
      const int m = m0 + srow;
      uint4 v0 = make_uint4(0, 0, 0, 0), v1 = v0;
      if (m < a.M) {
        const uint4* src =
            reinterpret_cast<const uint4*>(x + static_cast<std::int64_t>(m) * a.K + k0 + scol);
        v0 = __ldg(src), v1 = __ldg(src + 1);
      }
      *reinterpret_cast<uint4*>(&xs[srow][scol]) = v0;
      *reinterpret_cast<uint4*>(&xs[srow][scol + 8]) = v1;
    }
    {
      const int n = n0 + srow;
      std::uint32_t packed[kTcParts][8] = {};
      if (n < a.N) {
        const std::uint32_t* row = a.wq + static_cast<std::int64_t>(n) * words;
        const std::int64_t gi = static_cast<std::int64_t>(n) * groups + (k0 + scol) / a.group_size;
        const float sc = to_float(scales[gi]), bi = a.symmetric ? 0.f : to_float(biases[gi]);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
          std::uint16_t parts[kTcParts];
          split_bf16(dequant(code_at<BITS>(row, k0 + scol + j), sc, bi, a.symmetric), parts);
#pragma unroll
          for (int i = 0; i < kTcParts; ++i) packed[i][j / 2] |= std::uint32_t(parts[i]) << (16 * (j & 1));
        }
      }
#pragma unroll
      for (int i = 0; i < kTcParts; ++i) {
        *reinterpret_cast<uint4*>(&ws[i][srow][scol]) =
            make_uint4(packed[i][0], packed[i][1], packed[i][2], packed[i][3]);
        *reinterpret_cast<uint4*>(&ws[i][srow][scol + 8]) =
            make_uint4(packed[i][4], packed[i][5], packed[i][6], packed[i][7]);
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTcK; kk += 16) {
      std::uint32_t af[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = wm + 16 * i + g;
        af[i][0] = pair_at(&xs[r][kk + 2 * t]), af[i][1] = pair_at(&xs[r + 8][kk + 2 * t]);
        af[i][2] = pair_at(&xs[r][kk + 2 * t + 8]), af[i][3] = pair_at(&xs[r + 8][kk + 2 * t + 8]);
      }
#pragma unroll
      for (int p = 0; p < kTcParts; ++p)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int c = wn + 8 * j + g;
          const std::uint32_t bf[2] = {pair_at(&ws[p][c][kk + 2 * t]), pair_at(&ws[p][c][kk + 2 * t + 8])};
#pragma unroll
          for (int i = 0; i < 2; ++i) mma_16816<__nv_bfloat16>(acc[p][i][j], af[i], bf);
        }
    }
    __syncthreads();
  }

  O* out = static_cast<O*>(a.out);
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int m = m0 + wm + 16 * i + g + (e >> 1) * 8, n = n0 + wn + 8 * j + 2 * t + (e & 1);
        // The smallest part first: its sum is the one the others would round away.
        const float v = acc[0][i][j][e] + (acc[1][i][j][e] + acc[2][i][j][e] * (1.f / 256.f)) * (1.f / 256.f);
        if (m < a.M && n < a.N) out[static_cast<std::int64_t>(m) * a.N + n] = from_float<O>(v);
      }
}

}  // namespace cuda
}  // namespace onebit

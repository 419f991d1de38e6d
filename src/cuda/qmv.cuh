// Matrix-vector kernel for x @ W_hat^T with few rows of x (M <= 8): each
// warp streams R rows of W once, each lane a 16-byte chunk at a time, and
// every x value a lane loads serves its R rows and, through the per-group
// algebra below, needs one add per weight bit:
//   sum_k w_hat_k x_k = scale * sum_k q_k x_k + bias * sum_k x_k
// (symmetric: scale * (2 * sum_{q=1} x_k - sum_k x_k)).
#pragma once

#include "codes.cuh"

namespace onebit {
namespace cuda {

// Words a lane loads per step: 4 (one uint4) where 32-element pieces tile a
// uint4 (1, 2, 4 bits), 8 for 8 bits, else one piece (3/5/6 bits straddle words).
template <int BITS>
struct QmvChunk {
  static constexpr int kWords = (BITS == 1 || BITS == 2 || BITS == 4) ? 4 : BITS == 8 ? 8 : BITS;
  static constexpr int kPieces = kWords / BITS;  // 32-element pieces per chunk
};

constexpr int kQmvWarps = 4;  // warps per block

// Rows of W per warp: 8 at M = 1 (each converted x value serves more rows); 4 above (8 spill at M = 2).
__host__ __device__ constexpr int qmv_rows(int mt) { return mt == 1 ? 8 : 4; }

// 32 consecutive x values as floats (x rows are 16-byte aligned when vec).
template <class X>
__device__ __forceinline__ void load_x32(const X* p, float (&v)[32], bool vec) {
  if (vec) {
    constexpr int kPer = 16 / sizeof(X);
#pragma unroll
    for (int i = 0; i < 32 / kPer; ++i) {
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(p) + i);
      const X* e = reinterpret_cast<const X*>(&u);
#pragma unroll
      for (int j = 0; j < kPer; ++j) v[i * kPer + j] = to_float(e[j]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < 32; ++j) v[j] = to_float(p[j]);
  }
}

// Code of element e of a chunk held in registers (e a compile-time constant
// after unrolling, so the word index and shifts are too).
template <int BITS>
__device__ __forceinline__ std::uint32_t chunk_code(const std::uint32_t (&w)[QmvChunk<BITS>::kWords],
                                                    int e) {
  const int bit = e * BITS;
  const int word = bit >> 5, shift = bit & 31;
  std::uint32_t v = w[word] >> shift;
  if (32 % BITS != 0 && shift + BITS > 32) v |= w[word + 1] << (32 - shift);
  return v & ((1u << BITS) - 1u);
}

// MT: rows of x the accumulators hold (M <= MT).
template <int BITS, int MT, class X, class S>
__global__ void __launch_bounds__(kQmvWarps * 32) qmv_t(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  constexpr int CW = QmvChunk<BITS>::kWords, PIECES = QmvChunk<BITS>::kPieces, R = qmv_rows(MT);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n0 = (blockIdx.x * kQmvWarps + warp) * R;
  if (n0 >= a.N) return;
  const X* x = static_cast<const X*>(a.x);
  const S* scales = static_cast<const S*>(a.scales);
  const S* biases = static_cast<const S*>(a.biases);
  const std::int64_t words = static_cast<std::int64_t>(a.K) * BITS / 32;  // per row
  const std::int64_t chunks = (words + CW - 1) / CW;
  const int groups = a.K / a.group_size;

  // W depends on no earlier kernel's result in the stream; x may: fetch W into L2 while
  // the previous kernel finishes (programmatic launch), read x only after it has.
  allow_next_kernel();
  for (std::int64_t c = lane; c < chunks; c += 32)
#pragma unroll
    for (int r = 0; r < R; ++r) prefetch_l2(a.wq + min(n0 + r, a.N - 1) * words + c * CW);
  wait_for_previous_kernel();

  float acc[R][MT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.f;

  for (std::int64_t c = lane; c < chunks; c += 32) {
    // Every load of the step first, so R * CW words are in flight at once.
    std::uint32_t w[R][CW];
    const bool whole = (c + 1) * CW <= words;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int n = min(n0 + r, a.N - 1);  // rows past N repeat the last; never stored
      const std::uint32_t* src = a.wq + n * words + c * CW;
      if (CW % 4 == 0 && whole && a.vector_loads) {
#pragma unroll
        for (int i = 0; i < CW / 4; ++i) {
          const uint4 u = __ldg(reinterpret_cast<const uint4*>(src) + i);
          w[r][4 * i] = u.x, w[r][4 * i + 1] = u.y, w[r][4 * i + 2] = u.z, w[r][4 * i + 3] = u.w;
        }
      } else {
#pragma unroll
        for (int i = 0; i < CW; ++i) w[r][i] = c * CW + i < words ? __ldg(src + i) : 0u;
      }
    }
#pragma unroll
    for (int p = 0; p < PIECES; ++p) {
      const std::int64_t k0 = (c * PIECES + p) * 32;
      if (k0 >= a.K) break;  // the last chunk of a row may be partial
      const int g = static_cast<int>(k0 / a.group_size);
      float sc[R], bi[R];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const std::int64_t idx = static_cast<std::int64_t>(min(n0 + r, a.N - 1)) * groups + g;
        sc[r] = to_float(scales[idx]);
        bi[r] = a.symmetric ? 0.f : to_float(biases[idx]);
      }
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if (m >= a.M) break;
        float xv[32];
        load_x32(x + static_cast<std::int64_t>(m) * a.K + k0, xv, a.vector_loads);
        float sx = 0.f;
#pragma unroll
        for (int j = 0; j < 32; ++j) sx += xv[j];
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float dot = 0.f;
#pragma unroll
          for (int j = 0; j < 32; ++j) {
            const std::uint32_t q = chunk_code<BITS>(w[r], p * 32 + j);
            if (BITS == 1) {
              if (q) dot += xv[j];
            } else {
              dot = fmaf(static_cast<float>(q), xv[j], dot);
            }
          }
          acc[r][m] += a.symmetric ? sc[r] * (2.f * dot - sx) : sc[r] * dot + bi[r] * sx;
        }
      }
    }
  }

  O* out = static_cast<O*>(a.out);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float v = acc[r][m];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0 && m < a.M && n0 + r < a.N)
        out[static_cast<std::int64_t>(m) * a.N + n0 + r] = from_float<O>(v);
    }
}

}  // namespace cuda
}  // namespace onebit

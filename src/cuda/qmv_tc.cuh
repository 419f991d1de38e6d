// Tensor-core matrix-vector kernel for 1-bit W and float16 / bfloat16 x, M <= 16:
// W's bits become the mma's A operand directly, each register two weights as 0 or
// 2.0 (the bit moved onto the exponent's top bit, 0x4000 in both half types: a shift
// and an AND), x the B operand (x row m is column m: M = 1..8 take one mma of N = 8
// per step, 9..16 two with the same A), and
// the float32 accumulators hold 2 sum_k q_k x_k per group, which the per-group algebra
// of qmv.cuh turns into the result:
//   affine:    scale * sum q x + bias * sum x  =  (scale/2) acc + (bias/2) xacc
//   symmetric: scale * (2 sum q x - sum x)     =  scale acc - (scale/2) xacc
// where xacc = 2 sum_k x_k comes from one more mma with A all 2.0. The products are
// exact (x times a power of two) and every sum is float32, so the error bound of the
// float32 kernels holds (tests/error_bound.py). The library sends it M >= 2: at M = 1
// qmv_stream_t and qmv_staged_t were faster (docs/cuda.md).
//
// A block takes 16 rows of W; its warps split K (chunks of 128 values, one 16-byte
// load of each row) and add their partial sums in shared memory at the end.
//
// The mma's 16 k slots of one step map to 16 values of one 32-bit word of W (so a step
// never spans two groups): lane (g, t) (g = lane / 4, t = lane % 4) of step h (0, 1)
// holds bits (8h + 2t, 8h + 2t + 16) in its slots (2t, 2t + 1) and bits
// (8h + 2t + 1, 8h + 2t + 17) in slots (2t + 8, 2t + 9); B holds x at the same k.
#pragma once

#include "mma.cuh"

namespace onebit {
namespace cuda {

constexpr int kTcvWarps = 8;  // warps per block (each a share of K)
constexpr int kTcvRows = 16;  // rows of W per block: the mma's M
constexpr int kTcvChunk = 128;  // values of K per 16-byte load of a row

// GS: the group size (a template: the groups a chunk holds are then known); NT: mma
// tiles of 8 rows of x (M <= 8 NT).
template <int GS, int NT, class X, class S, int WARPS = kTcvWarps>
__global__ void __launch_bounds__(WARPS * 32) qmv_tc_t(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  static_assert(GS % 32 == 0 && kTcvChunk % GS == 0, "a group is whole words within a chunk");
  constexpr int kWordsPerGroup = GS / 32;
  static_assert(kTcvRows * 8 * NT <= WARPS * 32, "a thread per output at the end");
  __shared__ float partial[WARPS][NT][4][32];

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int n0 = blockIdx.x * kTcvRows;
  const std::int64_t words = a.K / 32;  // per row; K % 128 == 0 on this path
  const std::int64_t chunks = words / 4;
  const std::int64_t share = (chunks + WARPS - 1) / WARPS;
  const std::int64_t c_begin = warp * share, c_end = min(chunks, c_begin + share);
  const int groups = a.K / GS;

  // This lane's two rows (past N: the last row, never stored) and x row (past M: zeros).
  const std::int64_t n_lo = min(n0 + g, a.N - 1), n_hi = min(n0 + g + 8, a.N - 1);
  const std::uint32_t* w_lo = a.wq + n_lo * words;
  const std::uint32_t* w_hi = a.wq + n_hi * words;
  const S* scales = static_cast<const S*>(a.scales);
  const S* biases = a.symmetric ? scales : static_cast<const S*>(a.biases);
  // x row g + 8j is column g of tile j.
  bool x_live[NT];
  const X* xrow[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    x_live[j] = g + 8 * j < a.M;
    xrow[j] = static_cast<const X*>(a.x) + std::int64_t(x_live[j] ? g + 8 * j : 0) * a.K + 2 * t;
  }

  // Before the previous kernel ends (programmatic launch): the block's rows of W, scales
  // and biases into L2 (one contiguous span each) and this warp's first chunk into
  // registers; x (which that kernel may write) after.
  {
    const int rows = min(kTcvRows, a.N - n0);
    const std::int64_t factor_bytes = std::int64_t(rows) * groups * std::int64_t(sizeof(S));
    const std::int64_t spans[3] = {rows * words * 4, factor_bytes, a.symmetric ? 0 : factor_bytes};
    const char* bases[3] = {reinterpret_cast<const char*>(a.wq + std::int64_t(n0) * words),
                            reinterpret_cast<const char*>(scales + std::int64_t(n0) * groups),
                            reinterpret_cast<const char*>(biases + std::int64_t(n0) * groups)};
#pragma unroll
    for (int i = 0; i < 3; ++i)
      for (std::int64_t off = std::int64_t(threadIdx.x) * 128; off < spans[i]; off += WARPS * 32 * 128)
        prefetch_l2(bases[i] + off);
  }
  constexpr int kGroups = kTcvChunk / GS;  // per chunk
  // Chunk c of this lane's two rows: W words, scales and biases (symmetric: scales twice).
  struct Chunk {
    uint4 lo, hi;
    S s[kGroups][2], b[kGroups][2];
  };
  const auto load = [&](std::int64_t c, Chunk& ch) {
    ch.lo = __ldg(reinterpret_cast<const uint4*>(w_lo) + c);
    ch.hi = __ldg(reinterpret_cast<const uint4*>(w_hi) + c);
#pragma unroll
    for (int i = 0; i < kGroups; ++i) {
      const std::int64_t gi = c * kGroups + i;
      ch.s[i][0] = scales[n_lo * groups + gi], ch.s[i][1] = scales[n_hi * groups + gi];
      ch.b[i][0] = biases[n_lo * groups + gi], ch.b[i][1] = biases[n_hi * groups + gi];
    }
  };
  // Two chunks ahead in registers (ptxas issues a chunk's loads late in the one before).
  Chunk next{}, after{};
  if (c_begin < c_end) load(c_begin, next), load(min(c_begin + 1, c_end - 1), after);
  wait_for_previous_kernel();
  allow_next_kernel();

  const std::uint32_t two[4] = {kTwoPair, kTwoPair, kTwoPair, kTwoPair};
  float y[NT][4] = {}, acc[NT][4] = {}, xacc[NT][4] = {};
  for (std::int64_t c = c_begin; c < c_end; ++c) {
    const Chunk cur = next;
    next = after;
    load(min(c + 2, c_end - 1), after);  // past the end: the last chunk again (no branch)
    const std::uint32_t lo[4] = {cur.lo.x, cur.lo.y, cur.lo.z, cur.lo.w};
    const std::uint32_t hi[4] = {cur.hi.x, cur.hi.y, cur.hi.z, cur.hi.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const std::int64_t k0 = (c * 4 + i) * 32;
      // x at k0 + 2t + {0, 8, 16, 24} (two values each), zeros for rows past M.
      std::uint32_t xv[NT][4];
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int u = 0; u < 4; ++u)
          xv[j][u] = x_live[j] ? __ldg(reinterpret_cast<const std::uint32_t*>(xrow[j] + k0 + 8 * u)) : 0u;
      const std::uint32_t wl = lo[i] >> (2 * t), wh = hi[i] >> (2 * t);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const std::uint32_t w[4] = {h ? bit_pair<8>(wl) : bit_pair<0>(wl), h ? bit_pair<8>(wh) : bit_pair<0>(wh),
                                    h ? bit_pair<9>(wl) : bit_pair<1>(wl), h ? bit_pair<9>(wh) : bit_pair<1>(wh)};
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const std::uint32_t b[2] = {__byte_perm(xv[j][h], xv[j][h + 2], 0x5410),
                                      __byte_perm(xv[j][h], xv[j][h + 2], 0x7632)};
          mma_16816<X>(acc[j], w, b);
          mma_16816<X>(xacc[j], two, b);
        }
      }
      if ((i + 1) % kWordsPerGroup == 0) {  // the end of a group: y += its factors times its sums
        const int gi = i / kWordsPerGroup;
#pragma unroll
        for (int r = 0; r < 2; ++r) {  // rows g, g + 8
          const float scale = to_float(cur.s[gi][r]);
          // affine: (scale/2) acc + (bias/2) xacc; symmetric: scale acc - (scale/2) xacc
          const float fa = a.symmetric ? scale : 0.5f * scale;
          const float fx = a.symmetric ? -0.5f * scale : 0.5f * to_float(cur.b[gi][r]);
#pragma unroll
          for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; ++e) y[j][e] = fmaf(fa, acc[j][e], fmaf(fx, xacc[j][e], y[j][e]));
        }
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[j][e] = 0.f, xacc[j][e] = 0.f;
      }
    }
  }

  // The warps' partial sums: lane (g, t)'s y[j][e] is row g + 8 (e / 2) of W, row
  // 8j + 2t + e % 2 of x.
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) partial[warp][j][e][lane] = y[j][e];
  __syncthreads();
  if (threadIdx.x < kTcvRows * 8 * NT) {
    const int r = threadIdx.x / (8 * NT), m = threadIdx.x % (8 * NT);
    const int j = m / 8, e = (r / 8) * 2 + (m & 1), l = (r % 8) * 4 + (m % 8) / 2;
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) v += partial[w][j][e][l];
    if (m < a.M && n0 + r < a.N) static_cast<O*>(a.out)[std::int64_t(m) * a.N + n0 + r] = from_float<O>(v);
  }
}

}  // namespace cuda
}  // namespace onebit

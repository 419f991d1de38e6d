// Matrix-vector kernel for one row of x (a decode step): qmv_t's algebra
// (qmv.cuh), with x converted to float32 once per block into shared memory,
// one warp step at a time, with its 32-value sums, instead of by every warp in
// registers: a warp then spends, per 32 weights of a row, 8 shared loads (shared
// by its rows) and one add per weight bit. docs/cuda.md compares it with qmv_t.
#pragma once

#include "qmv.cuh"

namespace onebit {
namespace cuda {

constexpr int kStagedWarps = 8;  // warps per block
constexpr int kStagedRows = 2;   // rows of W per warp

// One step of a warp: each lane one chunk (QmvChunk) of each of its rows.
template <int BITS>
struct StagedStep {
  static constexpr int kPieces = QmvChunk<BITS>::kPieces;  // 32-value pieces per lane
  static constexpr int kLaneK = 32 * kPieces;              // x values per lane
  static constexpr int kK = 32 * kLaneK;                   // x values per step
  static constexpr int kLaneUnits = kLaneK / 4;            // float4 units per lane (8, 16 or 32)
};

// Shared-memory index (in float4 units) of unit u of a step: lanes read units
// kLaneUnits apart, all in the same bank group; XOR-ing the low 3 bits with the
// lane spreads each 8 lanes of a 16-byte access over the 8 bank groups.
template <int BITS>
__device__ __forceinline__ int staged_unit(int u) {
  return u ^ ((u / StagedStep<BITS>::kLaneUnits) & 7);
}

// Raw x of one step, [k0, k0 + kK), copied into shared memory without registers
// (cp.async, 16 bytes a copy; rows are 16-byte aligned on this path); zeros past K.
template <int BITS, class X>
__device__ __forceinline__ void copy_step_x(const X* x, std::int64_t K, std::int64_t k0, uint4* raw) {
  constexpr int kPer = 16 / sizeof(X), kUnits = StagedStep<BITS>::kK / kPer;
  for (int u = threadIdx.x; u < kUnits; u += blockDim.x) {
    const std::int64_t k = k0 + std::int64_t(u) * kPer;
    if (k < K) copy_async_16(raw + u, x + k);
    else raw[u] = make_uint4(0, 0, 0, 0);
  }
  copy_async_commit();
}

// Piece `piece` (32 values) of the raw step as float32 (swizzled), and its sum at
// [p][lane] (the lane and piece that read it: conflict free).
template <int BITS, class X>
__device__ __forceinline__ void widen_step_piece(const uint4* raw, int piece, float4* xs, float* sums) {
  constexpr int P = StagedStep<BITS>::kPieces;
  XPiece<X> xr;
#pragma unroll
  for (int i = 0; i < XPiece<X>::kVecs; ++i) xr.v[i] = raw[piece * XPiece<X>::kVecs + i];
  float v[32];
  widen_x32(xr, v);
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < 32; ++j) s += v[j];
#pragma unroll
  for (int i = 0; i < 8; ++i)
    xs[staged_unit<BITS>(piece * 8 + i)] = make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
  sums[(piece % P) * 32 + piece / P] = s;
}

// M = 1; R rows of W per warp, WARPS warps per block (the defaults are what the
// library launches; others are for benchmarks). At least 2 blocks per SM: with no
// minimum, ptxas held 4 bits to 64 registers and spilled.
template <int BITS, class X, class S, int R = kStagedRows, int WARPS = kStagedWarps>
__global__ void __launch_bounds__(WARPS * 32, 2) qmv_staged_t(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  using Step = StagedStep<BITS>;
  constexpr int CW = QmvChunk<BITS>::kWords, P = Step::kPieces;
  __shared__ uint4 raw[Step::kK * sizeof(X) / 16];
  __shared__ float4 xs[Step::kK / 4];
  __shared__ float sums[Step::kK / 32];

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n0 = (blockIdx.x * WARPS + warp) * R;  // may be >= N: such a warp only stages
  const X* x = static_cast<const X*>(a.x);
  const int steps = static_cast<int>((a.K + Step::kK - 1) / Step::kK);
  const WarpRows<BITS, R, S> wr(a, n0);

  // Before the previous kernel ends (programmatic launch): the first step's W into
  // registers, the rest of this warp's rows and factors into L2. x (which it may write) after.
  std::uint32_t w[R][CW];
  if (lane < wr.chunks) load_chunk<BITS, R>(wr.rows, lane, w);
  if (n0 < a.N) wr.prefetch_l2(a.symmetric, lane);
  wait_for_previous_kernel();
  allow_next_kernel();
  copy_step_x<BITS, X>(x, a.K, 0, raw);

  float acc[R] = {};
  for (int s = 0; s < steps; ++s) {
    copy_async_wait_all();
    __syncthreads();  // the step's raw x is in; every warp is done with the last step's xs
    for (int piece = threadIdx.x; piece < Step::kK / 32; piece += blockDim.x)
      widen_step_piece<BITS, X>(raw, piece, xs, sums);
    __syncthreads();  // xs ready, raw free
    const std::int64_t c = std::int64_t(s) * 32 + lane;  // this lane's chunk
    // The next step's x and W are loaded while this step computes.
    std::uint32_t wn[R][CW];
    if (s + 1 < steps) {
      copy_step_x<BITS, X>(x, a.K, std::int64_t(s + 1) * Step::kK, raw);
      if (c + 32 < wr.chunks) load_chunk<BITS, R>(wr.rows, c + 32, wn);
    }
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const std::int64_t k = (c * P + p) * 32;
      const bool valid = c < wr.chunks && k < a.K;
      const int g = valid ? static_cast<int>(k >> wr.group_shift) : 0;  // past K: read, never used
      float dot[R][2] = {};  // two chains per row: half the dependent-add latency
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 q4 = xs[staged_unit<BITS>(lane * Step::kLaneUnits + p * 8 + i)];
        const float xv[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int j = 4 * i + e;
            const std::uint32_t q = chunk_code<BITS>(w[r], p * 32 + j);
            if (BITS == 1) {
              if (q) dot[r][j & 1] += xv[e];
            } else {
              dot[r][j & 1] = fmaf(static_cast<float>(q), xv[e], dot[r][j & 1]);
            }
          }
      }
      const float sx = sums[p * 32 + lane];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float d = dot[r][0] + dot[r][1], scale = to_float(wr.srow[r][g]);
        const float v = a.symmetric ? scale * (2.f * d - sx) : scale * d + to_float(wr.brow[r][g]) * sx;
        if (valid) acc[r] += v;
      }
    }
    if (s + 1 < steps) {
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < CW; ++i) w[r][i] = wn[r][i];
    }
  }

  O* out = static_cast<O*>(a.out);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float v = warp_sum(acc[r]);
    if (lane == 0 && n0 + r < a.N) out[n0 + r] = from_float<O>(v);
  }
}

}  // namespace cuda
}  // namespace onebit

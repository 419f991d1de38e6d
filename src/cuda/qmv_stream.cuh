// Matrix-vector kernel for one row of x (a decode step) that keeps W streaming:
// qmv_t's algebra (qmv.cuh) with
// - x converted to float32 once per block, all of K, into shared memory with its
//   32-value sums (swizzled: conflict-free 16-byte reads), so a warp spends, per
//   32 weights of a row, 8 shared loads shared by its rows and one add per weight bit;
// - persistent warps: the grid is what fits on the GPU at once, and each warp walks
//   its rows (R at a time) and, per row group, the steps of K (each lane one 16-byte
//   chunk of each row per step);
// - each lane's W chunks copied ahead into a ring in shared memory (cp.async, no
//   registers held), kStreamDepth steps ahead of the one it computes, across row
//   groups: every warp keeps depth * R * 512 bytes in flight all the time.
#pragma once

#include "qmv.cuh"

namespace onebit {
namespace cuda {

constexpr int kStreamWarps = 8;   // warps per block
constexpr int kStreamRows = 2;    // rows of W per warp and row group
constexpr int kStreamDepth = 4;   // W steps in flight per warp

// A warp step: each lane one chunk (QmvChunk) of each of its rows.
template <int BITS>
struct StreamStep {
  static constexpr int kWords = QmvChunk<BITS>::kWords;
  static constexpr int kPieces = QmvChunk<BITS>::kPieces;  // 32-value pieces per lane
  static constexpr int kLaneUnits = 8 * kPieces;           // float4 units of x per lane chunk
  static constexpr int kK = 32 * 32 * kPieces;             // x values per step
};

// Piece sums of x a block keeps: whole steps' worth (a lane of a partial last step
// past K has a slot too).
template <int BITS>
__host__ __device__ constexpr int stream_sums(int K) {
  return (K + StreamStep<BITS>::kK - 1) / StreamStep<BITS>::kK * (StreamStep<BITS>::kK / 32);
}
// Dynamic shared memory of a block: x (float32), its piece sums, the warps' W rings.
template <int BITS>
__host__ __device__ constexpr std::size_t stream_smem_bytes(int K, int R, int warps, int depth = kStreamDepth) {
  return std::size_t(K) * 4 + std::size_t(stream_sums<BITS>(K)) * 4 +
         std::size_t(warps) * depth * R * 32 * QmvChunk<BITS>::kWords * 4;
}

// Index (float4 units) of x unit u: a lane's chunk is kLaneUnits (a multiple of 8)
// units, so every lane would read the same bank group; XOR with the chunk's low 3 bits
// spreads each 8 lanes of a 16-byte access over the 8 bank groups.
template <int BITS>
__device__ __forceinline__ int stream_unit(int u) {
  return u ^ ((u / StreamStep<BITS>::kLaneUnits) & 7);
}

// Copies a lane's chunk c of each of its R rows into ring slot `slot` (zeros where c is
// past the row; those pieces are never added). One commit group per call.
template <int BITS, int R>
__device__ __forceinline__ void stream_copy_chunk(const std::uint32_t* const (&rows)[R], std::int64_t c,
                                                  std::int64_t chunks, std::uint32_t* slot) {
  constexpr int CW = QmvChunk<BITS>::kWords;
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    std::uint32_t* dst = slot + (r * 32 + lane) * CW;
    if (c < chunks) {
      const std::uint32_t* src = rows[r] + c * CW;
      if (CW % 4 == 0) {
#pragma unroll
        for (int i = 0; i < CW / 4; ++i) copy_async_16(dst + 4 * i, src + 4 * i);
      } else {
#pragma unroll
        for (int i = 0; i < CW; ++i) copy_async_4(dst + i, src + i);
      }
    } else {
#pragma unroll
      for (int i = 0; i < CW; ++i) dst[i] = 0;
    }
  }
  copy_async_commit();
}

// M = 1. R rows of W per warp and row group, WARPS warps per block, D steps in flight
// (the defaults are what the library launches; others are for benchmarks). Launched with
// stream_smem_bytes() of dynamic shared memory and at most as many blocks as fit.
template <int BITS, class X, class S, int R = kStreamRows, int WARPS = kStreamWarps, int D = kStreamDepth>
__global__ void __launch_bounds__(WARPS * 32) qmv_stream_t(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  using Step = StreamStep<BITS>;
  constexpr int CW = Step::kWords, P = Step::kPieces;
  extern __shared__ float4 smem[];
  const int K = a.K;
  float4* xs = smem;                                          // K / 4 units
  float* sums = reinterpret_cast<float*>(smem + K / 4);       // stream_sums(K)
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  std::uint32_t* ring = reinterpret_cast<std::uint32_t*>(sums + stream_sums<BITS>(K)) + warp * (D * R * 32 * CW);

  const S* scales = static_cast<const S*>(a.scales);
  const S* biases = static_cast<const S*>(a.biases);
  const std::int64_t words = static_cast<std::int64_t>(K) * BITS / 32;  // per row
  const std::int64_t chunks = (words + CW - 1) / CW;
  const int steps = (K + Step::kK - 1) / Step::kK;
  const int groups = K / a.group_size;
  const int group_shift = __ffs(a.group_size) - 1;  // group sizes are powers of two
  const int row_groups = (a.N + R - 1) / R;
  const int first = blockIdx.x * WARPS + warp, stride = gridDim.x * WARPS;
  // This warp's work: row groups first, first + stride, ...; steps of each. Item t is
  // row group first + (t / steps) * stride, step t % steps.
  const int mine = first < row_groups ? (row_groups - 1 - first) / stride + 1 : 0;
  const int items = mine * steps;

  auto row_pointers = [&](int rg, const std::uint32_t* (&rows)[R], const S* (&srow)[R], const S* (&brow)[R]) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const std::int64_t n = min(rg * R + r, a.N - 1);  // rows past N repeat the last; never stored
      rows[r] = a.wq + n * words, srow[r] = scales + n * groups;
      brow[r] = a.symmetric ? srow[r] : biases + n * groups;  // read, never used, when symmetric
    }
  };
  auto issue = [&](int t) {  // copies item t's chunks into ring slot t % D (an empty group past the end)
    if (t < items) {
      const std::uint32_t* rows[R];
      const S *sr[R], *br[R];
      row_pointers(first + (t / steps) * stride, rows, sr, br);
      stream_copy_chunk<BITS, R>(rows, std::int64_t(t % steps) * 32 + lane, chunks, ring + (t % D) * R * 32 * CW);
    } else {
      copy_async_commit();
    }
  };

  // Before the previous kernel ends (programmatic launch): the first D steps of W are
  // requested and this warp's rows and factors brought into L2; x (which the previous
  // kernel may write) only after it has.
  for (int t = 0; t < D; ++t) issue(t);
  for (int i = 0; i < mine; ++i) {
    const std::uint32_t* rows[R];
    const S *sr[R], *br[R];
    row_pointers(first + i * stride, rows, sr, br);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      prefetch_span_l2(rows[r], words * 4, lane);
      prefetch_span_l2(sr[r], groups * std::int64_t(sizeof(S)), lane);
      if (!a.symmetric) prefetch_span_l2(br[r], groups * std::int64_t(sizeof(S)), lane);
    }
  }
  wait_for_previous_kernel();
  allow_next_kernel();

  // x as float32, swizzled, and the sum of each 32 values at [step][piece][lane].
  const X* x = static_cast<const X*>(a.x);
  for (int piece = threadIdx.x; piece < K / 32; piece += blockDim.x) {
    XPiece<X> xr;
    load_x32(x + std::int64_t(piece) * 32, xr);
    float v[32];
    widen_x32(xr, v);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 32; ++j) s += v[j];
#pragma unroll
    for (int i = 0; i < 8; ++i)
      xs[stream_unit<BITS>(piece * 8 + i)] = make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
    const int chunk = piece / P;
    sums[(chunk / 32) * 32 * P + (piece % P) * 32 + chunk % 32] = s;
  }
  __syncthreads();

  float acc[R] = {};
  for (int t = 0; t < items; ++t) {
    copy_async_wait_group<D - 1>();  // item t's copies are in (this lane's own)
    const int rg = first + (t / steps) * stride, s = t % steps;
    const std::uint32_t* rows[R];
    const S *srow[R], *brow[R];
    row_pointers(rg, rows, srow, brow);
    std::uint32_t w[R][CW];
    const std::uint32_t* slot = ring + (t % D) * R * 32 * CW;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < CW; ++i) w[r][i] = slot[(r * 32 + lane) * CW + i];
    issue(t + D);  // the slot just read is refilled D items ahead

    const std::int64_t c = std::int64_t(s) * 32 + lane;  // this lane's chunk
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const std::int64_t k = (c * P + p) * 32;
      const bool valid = c < chunks && k < K;
      const int g = valid ? static_cast<int>(k >> group_shift) : 0;  // past K: read, never used
      float dot[R][2] = {};  // two chains per row: half the dependent-add latency
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 q4 = valid ? xs[stream_unit<BITS>(static_cast<int>(c) * Step::kLaneUnits + p * 8 + i)]
                                : make_float4(0.f, 0.f, 0.f, 0.f);
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
      const float sx = valid ? sums[s * 32 * P + p * 32 + lane] : 0.f;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float d = dot[r][0] + dot[r][1], scale = to_float(srow[r][g]);
        const float v = a.symmetric ? scale * (2.f * d - sx) : scale * d + to_float(brow[r][g]) * sx;
        if (valid) acc[r] += v;
      }
    }

    if (s == steps - 1) {  // the row group is done
      O* out = static_cast<O*>(a.out);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float v = acc[r];
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == 0 && rg * R + r < a.N) out[rg * R + r] = from_float<O>(v);
        acc[r] = 0.f;
      }
    }
  }
  copy_async_wait_group<0>();  // no copy outlives the block
}

}  // namespace cuda
}  // namespace onebit

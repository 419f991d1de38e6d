// Matrix-vector kernel for x @ W_hat^T with few rows of x (2 <= M <= 8): each
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
// Rows of W per warp (M >= 2 here; M = 1 takes qmv_staged.cuh): more rows spill
// registers at M = 8 and leave fewer warps than the memory latency needs.
constexpr int kQmvRows = 2;

// 32 consecutive x values as 16-byte words (x rows are 16-byte aligned on this path).
template <class X>
struct XPiece {
  static constexpr int kPer = 16 / sizeof(X), kVecs = 32 / kPer;
  uint4 v[kVecs];
};
template <class X>
__device__ __forceinline__ void load_x32(const X* p, XPiece<X>& out) {
#pragma unroll
  for (int i = 0; i < XPiece<X>::kVecs; ++i) out.v[i] = __ldg(reinterpret_cast<const uint4*>(p) + i);
}
template <class X>
__device__ __forceinline__ void widen_x32(const XPiece<X>& in, float (&v)[32]) {
#pragma unroll
  for (int i = 0; i < XPiece<X>::kVecs; ++i) {
    const X* e = reinterpret_cast<const X*>(&in.v[i]);
#pragma unroll
    for (int j = 0; j < XPiece<X>::kPer; ++j) v[i * XPiece<X>::kPer + j] = to_float(e[j]);
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

// Loads chunk c of R rows of W (rows 16-byte aligned and whole chunks on this path).
template <int BITS, int R>
__device__ __forceinline__ void load_chunk(const std::uint32_t* const (&rows)[R], std::int64_t c,
                                           std::uint32_t (&w)[R][QmvChunk<BITS>::kWords]) {
  constexpr int CW = QmvChunk<BITS>::kWords;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const std::uint32_t* src = rows[r] + c * CW;
    if (CW % 4 == 0) {
#pragma unroll
      for (int i = 0; i < CW / 4; ++i) {
        const uint4 u = __ldg(reinterpret_cast<const uint4*>(src) + i);
        w[r][4 * i] = u.x, w[r][4 * i + 1] = u.y, w[r][4 * i + 2] = u.z, w[r][4 * i + 3] = u.w;
      }
    } else {  // 3, 5, 6 bits: a chunk is one 32-element piece of BITS words
#pragma unroll
      for (int i = 0; i < CW; ++i) w[r][i] = __ldg(src + i);
    }
  }
}

// Brings [p, p + bytes) into L2, the 128-byte lines split over the warp's lanes.
__device__ __forceinline__ void prefetch_span_l2(const void* p, std::int64_t bytes, int lane) {
  const char* base = static_cast<const char*>(p);
#pragma unroll 1
  for (std::int64_t off = std::int64_t(lane) * 128; off < bytes + 127; off += 32 * 128)
    prefetch_l2(base + min(off, bytes - 1));
}

// A warp's R rows n0 .. n0 + R - 1 of W: a row's length in words and 16-byte chunks,
// its groups, and pointers to each row's words, scales and biases (rows past N repeat
// the last and are never stored; biases are the scales, read and never used, when
// symmetric).
template <int BITS, int R, class S>
struct WarpRows {
  std::int64_t words, chunks;
  int groups, group_shift;  // group sizes are powers of two
  const std::uint32_t* rows[R];
  const S *srow[R], *brow[R];

  __device__ __forceinline__ WarpRows(const KernelArgs& a, int n0) {
    words = static_cast<std::int64_t>(a.K) * BITS / 32;
    chunks = (words + QmvChunk<BITS>::kWords - 1) / QmvChunk<BITS>::kWords;
    groups = a.K / a.group_size;
    group_shift = __ffs(a.group_size) - 1;
    const S* scales = static_cast<const S*>(a.scales);
    const S* biases = static_cast<const S*>(a.biases);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const std::int64_t n = min(n0 + r, a.N - 1);
      rows[r] = a.wq + n * words, srow[r] = scales + n * groups;
      brow[r] = a.symmetric ? srow[r] : biases + n * groups;
    }
  }

  // Brings the rows' W words, scales and (affine) biases into L2, split over the warp's lanes.
  __device__ __forceinline__ void prefetch_l2(bool symmetric, int lane) const {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      prefetch_span_l2(rows[r], words * 4, lane);
      prefetch_span_l2(srow[r], groups * std::int64_t(sizeof(S)), lane);
      if (!symmetric) prefetch_span_l2(brow[r], groups * std::int64_t(sizeof(S)), lane);
    }
  }
};

// The sum of v over the warp's lanes (every lane gets it).
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// MT: rows of x the accumulators hold (M <= MT). A register limit of 255 (one block per SM
// at least): with the default, ptxas spilled a few bytes at 3, 6 and 8 bits.
template <int BITS, int MT, class X, class S>
__global__ void __launch_bounds__(kQmvWarps * 32, 1) qmv_t(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  constexpr int CW = QmvChunk<BITS>::kWords, PIECES = QmvChunk<BITS>::kPieces, R = kQmvRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n0 = (blockIdx.x * kQmvWarps + warp) * R;
  if (n0 >= a.N) return;  // an exited warp counts as having allowed the next kernel
  const X* x = static_cast<const X*>(a.x);
  const WarpRows<BITS, R, S> wr(a, n0);

  // W, scales and biases are not written by the kernel this one may overlap (the host
  // launches normally when they could be: early_launch_allowed), x may: the first step's W
  // is loaded and the rest brought into L2 while the previous kernel finishes
  // (programmatic launch); x is read, and anything written, only once it has.
  std::uint32_t next[R][CW];
  if (lane < wr.chunks) load_chunk<BITS, R>(wr.rows, lane, next);
  wr.prefetch_l2(a.symmetric, lane);
  wait_for_previous_kernel();
  allow_next_kernel();

  float acc[R][MT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.f;

  // The next step's W is loaded while this step computes (R * CW words per lane in flight).
  for (std::int64_t c = lane; c < wr.chunks; c += 32) {
    std::uint32_t w[R][CW];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < CW; ++i) w[r][i] = next[r][i];
    if (c + 32 < wr.chunks) load_chunk<BITS, R>(wr.rows, c + 32, next);
    // Every scale and x load of the step before the first use, and no branch between
    // them: a partial last chunk's pieces past K read piece 0 and add nothing.
    bool valid[PIECES];
    std::int64_t k0[PIECES];
    float sc[PIECES][R], bi[PIECES][R];
#pragma unroll
    for (int p = 0; p < PIECES; ++p) {
      valid[p] = (c * PIECES + p) * 32 < a.K;
      k0[p] = valid[p] ? (c * PIECES + p) * 32 : 0;
      const int g = static_cast<int>(k0[p] >> wr.group_shift);
#pragma unroll
      for (int r = 0; r < R; ++r) sc[p][r] = to_float(wr.srow[r][g]), bi[p][r] = to_float(wr.brow[r][g]);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (MT > 1 && m >= a.M) break;  // M >= 1 always
      XPiece<X> xr[PIECES];
#pragma unroll
      for (int p = 0; p < PIECES; ++p) load_x32(x + static_cast<std::int64_t>(m) * a.K + k0[p], xr[p]);
#pragma unroll
      for (int p = 0; p < PIECES; ++p) {
        float xv[32];
        widen_x32(xr[p], xv);
        float sx = 0.f;
#pragma unroll
        for (int j = 0; j < 32; ++j) sx += xv[j];
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float dot[2] = {0.f, 0.f};  // two chains: half the dependent-add latency
#pragma unroll
          for (int j = 0; j < 32; ++j) {
            const std::uint32_t q = chunk_code<BITS>(w[r], p * 32 + j);
            if (BITS == 1) {
              if (q) dot[j & 1] += xv[j];
            } else {
              dot[j & 1] = fmaf(static_cast<float>(q), xv[j], dot[j & 1]);
            }
          }
          const float d = dot[0] + dot[1];
          const float v = a.symmetric ? sc[p][r] * (2.f * d - sx) : sc[p][r] * d + bi[p][r] * sx;
          if (valid[p]) acc[r][m] += v;
        }
      }
    }
  }

  O* out = static_cast<O*>(a.out);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float v = warp_sum(acc[r][m]);
      if (lane == 0 && m < a.M && n0 + r < a.N)
        out[static_cast<std::int64_t>(m) * a.N + n0 + r] = from_float<O>(v);
    }
}

}  // namespace cuda
}  // namespace onebit

// Tensor-core kernel for x @ W_hat^T with 1-bit W and float16 / bfloat16 x, M > 16.
//
// No W_hat is formed: per group, the mma multiplies the exact x (the A operand) by W's
// bits as 0 / 2.0 (the B operand; the bit moved onto the exponent's top bit, as in
// qmv_tc.cuh), so the float32 accumulator P holds 2 sum_k q_k x_k exactly up to float32
// sums; at the group's end the per-group algebra turns it into the result:
//   affine:    scale * sum q x + bias * sum x   =  (scale/2) P + bias * X
//   symmetric: scale * (2 sum q x - sum x)      =  scale P - scale * X
// with X = sum_k x_k (summed in float32 while x is staged). So the float32 kernels' error
// bound holds (tests/error_bound.py) with one mma per product, for any scale dtype.
//
// Tiles: a block takes 64 rows of x and 256 rows of W (8 warps, 2 x 4, each 32 x 64: 2 x 8
// mma tiles), K in steps of 128 (four 32-bit words of each W row). During a step, the next
// step's W words are copied (cp.async) into the other half of a two-step shared-memory
// buffer, its x into a staging area, its group factors into registers; after the step's
// mma, each thread reorders the x it copied into that half, sums it, and stores the
// factors: one barrier a step.
//
// The mma's k slots: within each 32 values of x (one W word), the smem row holds x in the
// order x0 x16 x1 x17 ... x15 x31, so the pair of k slots (2t, 2t + 1) of 8-value chunk c
// is (x_{4c+t}, x_{4c+t+16}) and lane t's B register for that chunk is bits (4c + t,
// 4c + t + 16) of the word: bit_pair<4c>(w >> t).
#pragma once

#include "mma.cuh"
#include "qmv.cuh"  // XPiece, widen_x32

namespace onebit {
namespace cuda {

constexpr int kQmmM = 64, kQmmN = 256, kQmmK = 128, kQmmThreads = 256;
constexpr int kQmmPad = 8;  // halves per smem x row beyond kQmmK: ldmatrix's 8 rows hit distinct banks
constexpr int kQmmMaxGroups = kQmmK / 32;  // groups in a step at the smallest group size

// A step's shared memory, twice, plus the staging area for the next step's x (dynamic
// shared memory: 76 KB, past the static 48 KB).
struct QmmStage {
  std::uint16_t x[kQmmM][kQmmK + kQmmPad];  // x values, reordered (above)
  std::uint32_t w[kQmmN][kQmmK / 32];        // W words
  float2 factors[kQmmMaxGroups][kQmmN];      // (P's factor, X's factor) of each group and W row
  float xsum[kQmmMaxGroups][kQmmM];          // X of each group and x row
};
using QmmRawX = std::uint16_t[kQmmM][kQmmK];  // x as copied, before the reorder
constexpr std::size_t qmm_tc_smem_bytes() { return 2 * sizeof(QmmStage) + sizeof(QmmRawX); }

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem_row) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// x rows 16-byte aligned (the host checks); K a multiple of 32 (of the group size). GS, the
// group size, is a template so that a step's group ends are known: no branch within a step
// (which kept ptxas from loading the next fragments during the mma). A last step past K
// computes zeros: its x, W words and factors are loaded as zeros.
template <int GS, class X, class S>
__global__ void __launch_bounds__(kQmmThreads, 1) qmm_tc_t(KernelArgs a) {
  static_assert(kQmmK % GS == 0 && GS % 32 == 0, "a step holds whole groups of whole words");
  using O = typename OutType<X, S>::type;
  extern __shared__ __align__(16) unsigned char qmm_smem[];
  QmmStage* stage = reinterpret_cast<QmmStage*>(qmm_smem);
  auto& raw = *reinterpret_cast<QmmRawX*>(qmm_smem + 2 * sizeof(QmmStage));
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t = lane & 3;  // the mma fragment's row group and column pair
  const int m0 = blockIdx.x * kQmmM, n0 = blockIdx.y * kQmmN;
  const int wm = (warp >> 2) * 32, wn = (warp & 3) * 64;  // this warp's 32 x 64 of the tile
  const int words = a.K / 32, groups = a.K / GS;
  const int steps = (a.K + kQmmK - 1) / kQmmK;

  // Staging: thread tid loads 32 values (one W word's span) of x row tid / 4, and the W words
  // and group factors of W row tid. Rows past M or N read row 0 and are zeroed.
  const int xr = tid >> 2, xp = tid & 3;
  const bool x_live = m0 + xr < a.M, w_live = n0 + tid < a.N;
  const X* xrow = static_cast<const X*>(a.x) + std::int64_t(x_live ? m0 + xr : 0) * a.K + 32 * xp;
  const std::int64_t wn_row = w_live ? n0 + tid : 0;
  const std::uint32_t* wrow = a.wq + wn_row * words;
  const S* srow = static_cast<const S*>(a.scales) + wn_row * groups;
  const S* brow = a.symmetric ? srow : static_cast<const S*>(a.biases) + wn_row * groups;
  struct Staged {
    float2 f[kQmmK / GS];
  };
  // Copies of x and W words past M, N or K are zeros (cp.async's zero fill; nothing is read).
  const auto load = [&](int step, Staged& s, QmmStage& st) {
    const int k0 = step * kQmmK;
    const bool x_in = x_live && k0 + 32 * xp < a.K;
#pragma unroll
    for (int i = 0; i < 4; ++i) copy_async_16_or_zeros(&raw[xr][32 * xp + 8 * i], x_in ? xrow + k0 + 8 * i : xrow, x_in);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const bool w_in = w_live && k0 / 32 + i < words;
      copy_async_4_or_zeros(&st.w[tid][i], w_in ? wrow + k0 / 32 + i : wrow, w_in);
    }
    copy_async_commit();
#pragma unroll
    for (int i = 0; i < kQmmK / GS; ++i) {
      const int gi = k0 / GS + i;
      s.f[i] = make_float2(0.f, 0.f);
      if (w_live && gi < groups) {
        const float scale = to_float(srow[gi]);
        s.f[i] = a.symmetric ? make_float2(scale, -scale) : make_float2(0.5f * scale, to_float(brow[gi]));
      }
    }
  };
  const auto store = [&](const Staged& s, QmmStage& st) {
    copy_async_wait_all();  // this thread's copies (it reads only its own x below)
    XPiece<X> piece;  // the 32 values this thread copied, as 16 pairs v[i]
#pragma unroll
    for (int i = 0; i < 4; ++i) piece.v[i] = *reinterpret_cast<const uint4*>(&raw[xr][32 * xp + 8 * i]);
    const std::uint32_t* v = reinterpret_cast<const std::uint32_t*>(piece.v);
#pragma unroll
    for (int c = 0; c < 4; ++c)  // chunk c: x_{4c+j}, x_{4c+j+16} for j = 0..3
      *reinterpret_cast<uint4*>(&st.x[xr][32 * xp + 8 * c]) =
          make_uint4(__byte_perm(v[2 * c], v[2 * c + 8], 0x5410), __byte_perm(v[2 * c], v[2 * c + 8], 0x7632),
                     __byte_perm(v[2 * c + 1], v[2 * c + 9], 0x5410),
                     __byte_perm(v[2 * c + 1], v[2 * c + 9], 0x7632));
    float f[32], sum = 0.f;
    widen_x32(piece, f);
#pragma unroll
    for (int i = 0; i < 16; ++i) sum += f[2 * i] + f[2 * i + 1];
    // X of a group: the 4 lanes of an x row hold its 4 word spans (lanes 4r .. 4r + 3).
    if (GS >= 64) sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    if (GS >= 128) sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if ((32 * xp) % GS == 0) st.xsum[32 * xp / GS][xr] = sum;
#pragma unroll
    for (int i = 0; i < kQmmK / GS; ++i) st.factors[i][tid] = s.f[i];
  };

  wait_for_previous_kernel();
  allow_next_kernel();
  Staged next;
  load(0, next, stage[0]);
  store(next, stage[0]);
  __syncthreads();

  float P[2][8][4] = {}, Y[2][8][4] = {};
  for (int step = 0; step < steps; ++step) {
    const QmmStage& st = stage[step & 1];
    if (step + 1 < steps) load(step + 1, next, stage[(step + 1) & 1]);
#pragma unroll 2
    for (int p = 0; p < 4; ++p) {
      std::uint32_t wv[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) wv[j] = st.w[wn + 8 * j + g][p] >> t;
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // the two mma steps of 16 values in this word
        std::uint32_t af[2][4];
#pragma unroll
        for (int i = 0; i < 2; ++i) ldmatrix_x4(af[i], &st.x[wm + 16 * i + (lane & 15)][32 * p + 16 * h + (lane >> 4) * 8]);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const std::uint32_t b[2] = {h ? bit_pair<8>(wv[j]) : bit_pair<0>(wv[j]),
                                      h ? bit_pair<12>(wv[j]) : bit_pair<4>(wv[j])};
#pragma unroll
          for (int i = 0; i < 2; ++i) mma_16816<X>(P[i][j], af[i], b);
        }
        const int done = 32 * p + 16 * h + 16;  // values of this step summed so far
        if (done % GS == 0) {  // a group's end: Y += its factors times P and X
          const int lg = done / GS - 1;
          float xs[2][2];
#pragma unroll
          for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int r = 0; r < 2; ++r) xs[i][r] = st.xsum[lg][wm + 16 * i + g + 8 * r];
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            const float4 f = *reinterpret_cast<const float4*>(&st.factors[lg][wn + 8 * j + 2 * t]);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
              for (int e = 0; e < 4; ++e) {
                const float fp = (e & 1) ? f.z : f.x, fx = (e & 1) ? f.w : f.y;
                Y[i][j][e] = fmaf(fp, P[i][j][e], fmaf(fx, xs[i][e >> 1], Y[i][j][e]));
                P[i][j][e] = 0.f;
              }
          }
        }
      }
    }
    if (step + 1 < steps) store(next, stage[(step + 1) & 1]);
    __syncthreads();
  }

  O* out = static_cast<O*>(a.out);
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int m = m0 + wm + 16 * i + g + 8 * (e >> 1), n = n0 + wn + 8 * j + 2 * t + (e & 1);
        if (m < a.M && n < a.N) out[std::int64_t(m) * a.N + n] = from_float<O>(Y[i][j][e]);
      }
}

}  // namespace cuda
}  // namespace onebit

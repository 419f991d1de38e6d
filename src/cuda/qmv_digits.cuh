// Matrix-vector kernel for one row of x at 1 bit (a decode step) on the integer tensor
// cores: a float add per weight bit costs more instructions than HBM allows; one int8 mma
// takes 512 weight bits. Per group of x (GS values, one scale group):
//   - x as fixed point: V_k = round(x_k * 2^(F - e - j_k)), e the group's largest
//     exponent (clamped below at kDigitMinExp), j_k = k % 8, F = kDigitFix: |V_k| < 2^48.
//     Exact for float16 x (its smallest unit, 2^-24, is a multiple of 2^(e + 7 - F), e <= 15);
//     other x lose at most 2^(e - 41) per value, far below float32's rounding of the terms.
//   - V_k as seven signed base-128 digits (|d| <= 64: int8), digit c column c of the mma's
//     B (column 7 zero), so one m16n8k32 takes 16 rows x 32 values x every digit.
//   - W's bits as A, unsigned bytes: word & (0x01010101 << j) keeps bits j, j + 8, j + 16,
//     j + 24 in place, i.e. bytes of value 2^j (bit set) or 0; 2^j * V_k = x_k * 2^(F - e).
//   - The int32 sums are exact. Lane (row, t) holds digit columns 2t and 2t + 1:
//     comb = d_2t + 128 d_2t+1, worth 2^(e - F + 14 t); the group's factors turn it into
//     scale * sum_{q=1} x (symmetric: 2 scale), plus bias * sum x (a quarter a lane).
// A block copies its W slice to shared memory (cp.async, issued before the programmatic
// wait) and converts its slice of x into digits there once, then its 8 warps each run one
// 16-row tile over the slice; a cluster of KS blocks splits K and adds its partial rows
// through distributed shared memory (sm_90), so no scratch memory, no atomics and one
// launch. Opt-in (backend.cu): slower than qmv_stream_t so far (docs/cuda.md). Fragment layouts: the PTX ISA's "Matrix Fragments for
// mma.m16n8k32" (.u8 A row-major, .s8 B column-major, .s32 accumulators).
#pragma once

#include <cooperative_groups.h>

#include "codes.cuh"

namespace onebit {
namespace cuda {

constexpr int kDigitWarps = 8;                    // per block, one 16-row tile each
constexpr int kDigitRows = kDigitWarps * 16;      // rows of W per block
constexpr int kDigitChunk = 128;                  // values of a 16-byte piece of a W row (4 mma)
constexpr int kDigitMaxChunks = 16;               // a block's slice of K: 2048 values at most
constexpr int kDigitFactorBytes = 64;             // a row's slice of scales (or biases) at most
constexpr int kDigitFactorWords = kDigitFactorBytes / 4 + 1;  // + the first word's offset
constexpr int kDigitMaxCluster = 8;               // blocks splitting K (portable cluster size)
constexpr int kDigitFix = 47;                     // F above
constexpr int kDigitMinExp = -78;                 // 2^(e - F) stays a normal float32
constexpr int kDigitStepBytes = 256;              // one mma step's B: 32 lanes x 8 bytes

// Chunks a block's slice may hold at group size GS with S_BYTES-byte factors.
__host__ __device__ constexpr int digit_max_chunks(int GS, int s_bytes) {
  return kDigitFactorBytes / (kDigitChunk / GS * s_bytes) < kDigitMaxChunks
             ? kDigitFactorBytes / (kDigitChunk / GS * s_bytes)
             : kDigitMaxChunks;
}

// Shared memory of a block whose slice is `chunks` 128-value chunks: the warps' W (16 rows
// each), the digits, the warps' factor words, the group factors (4 floats) and quarter
// sums, the block's partial rows.
__host__ __device__ constexpr std::size_t digit_smem_bytes(int chunks, int GS) {
  return std::size_t(chunks) * (kDigitWarps * 16 * 16 + 4 * kDigitStepBytes) +
         std::size_t(kDigitWarps) * 2 * 16 * kDigitFactorWords * 4 +
         std::size_t(chunks) * (kDigitChunk / GS) * 20 + kDigitRows * 4;
}

// Blocks a cluster splits K into: the fewest (1, 2, 4, 8) whose slices fit max_chunks and
// whose blocks fill twice the multiprocessors, while slices keep 2 chunks or more.
// 0: K too long for this kernel.
inline int digit_cluster(int N, int K, int max_chunks, int multiprocessors, int max_cluster) {
  const int chunks = K / kDigitChunk, row_blocks = (N + kDigitRows - 1) / kDigitRows;
  int ks = 1;
  auto slice = [chunks](int k) { return (chunks + k - 1) / k; };
  while (ks < max_cluster && (slice(ks) > max_chunks ||
                              (row_blocks * ks < 2 * multiprocessors && slice(2 * ks) >= 2)))
    ks *= 2;
  return slice(ks) > max_chunks ? 0 : ks;
}

// d (int32 accumulators) += a (16 x 32 unsigned bytes) * b (32 x 8 signed bytes).
__device__ __forceinline__ void mma_u8s8(int (&d)[4], const std::uint32_t (&a)[4], const uint2& b) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
}

__device__ __forceinline__ float pow2(int e) { return __int_as_float((127 + e) << 23); }  // normal e

// The balanced base-128 digit of v (its low 7 bits, -64..63); v becomes the rest.
__device__ __forceinline__ int next_digit(int& v) {
  const int d = ((v + 64) & 127) - 64;
  v = (v - d) >> 7;
  return d;
}

// One group of x (GS values, by one warp) into the slice's digits (`step0`: its first
// 32-value step there), its four factors and quarter sum.
template <int GS, class X>
__device__ __forceinline__ void convert_group(const X* x, int lane, unsigned char* digits, int step0,
                                              float* factors, float* quarter_sum) {
  constexpr int V = GS / 32;
  float v[V];
  unsigned top = 0;
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    v[i] = to_float(x[lane + 32 * i]);
    top = max(top, __float_as_uint(v[i]) & 0x7fffffffu);
    sum += v[i];
  }
  top = __reduce_max_sync(0xffffffffu, top);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  const bool finite = top < 0x7f800000u;
  const int e = max(static_cast<int>(top >> 23) - 127, kDigitMinExp);
  // Value k of a step (k = lane): byte q = k / 8 of half h = j & 1 of lane t = j / 2's
  // column-c word pair, j = k % 8 (the B fragment: k rows 4t + q and 16 + 4t + q).
  const int j = lane & 7, byte = (j >> 1) * 8 + (j & 1) * 4 + (lane >> 3);
  const float up = pow2(kDigitFix - e - j);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const float s = v[i] * up;  // exact: a power of two, |s| < 2^48
    const float hi = rintf(s * 0x1p-28f);  // |hi| <= 2^20
    int h = __float2int_rn(hi), l = __float2int_rn(__fmaf_rn(-hi, 0x1p28f, s));  // both exact
    unsigned char* step = digits + (step0 + i) * kDigitStepBytes + byte;
#pragma unroll
    for (int c = 0; c < 3; ++c) step[32 * c] = static_cast<unsigned char>(next_digit(l));
    step[96] = static_cast<unsigned char>(l);  // the rest: |l| <= 64
#pragma unroll
    for (int c = 4; c < 6; ++c) step[32 * c] = static_cast<unsigned char>(next_digit(h));
    step[192] = static_cast<unsigned char>(h);  // |h| <= 64
    if (lane < 8) reinterpret_cast<std::uint32_t*>(digits + (step0 + i) * kDigitStepBytes + 224)[lane] = 0u;
  }
  if (lane < 4)  // lane t's comb is worth 2^(e - F + 14 t)
    factors[lane] = finite ? pow2(e - kDigitFix + 14 * lane) : __int_as_float(0x7fc00000);
  if (lane == 0) *quarter_sum = sum * 0.25f;
}

__device__ __forceinline__ int cluster_size() {
#if __CUDA_ARCH__ >= 900
  return static_cast<int>(cooperative_groups::this_cluster().num_blocks());
#else
  return 1;
#endif
}

// M = 1, 1 bit, K % 128 == 0, W rows 16-byte aligned, N * K / 32 < 2^31. Grid: KS blocks
// (a cluster where KS > 1) per 128 rows, KS = digit_cluster(); dynamic shared memory:
// digit_smem_bytes(the slice's chunks).
template <int GS, class X, class S>
__global__ void __launch_bounds__(kDigitWarps * 32, 3) qmv_digits_t(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  constexpr int G = kDigitChunk / GS, SPG = GS / 32;  // groups a chunk, mma steps a group
  extern __shared__ __align__(16) unsigned char digit_smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, t = lane & 3, g = lane >> 2;
  const int ks = cluster_size(), rank = blockIdx.x % ks;
  const int chunks = a.K / kDigitChunk, per_rank = (chunks + ks - 1) / ks;
  const int c0 = min(chunks, rank * per_rank), c1 = min(chunks, c0 + per_rank), nch = c1 - c0;
  uint4* wsm = reinterpret_cast<uint4*>(digit_smem) + warp * per_rank * 16;  // [chunk][row]
  unsigned char* digits = digit_smem + per_rank * kDigitWarps * 16 * 16;
  std::uint32_t* fsm = reinterpret_cast<std::uint32_t*>(digits + per_rank * 4 * kDigitStepBytes);
  float* factors = reinterpret_cast<float*>(fsm + kDigitWarps * 2 * 16 * kDigitFactorWords);
  float* quarter_sums = factors + per_rank * G * 4;
  float* partial = quarter_sums + per_rank * G;
  fsm += warp * 2 * 16 * kDigitFactorWords;  // [kind][row][word], kind 0 scales, 1 biases

  const int row0 = static_cast<int>(blockIdx.x / ks) * kDigitRows + warp * 16;
  const int row_chunks = a.K / kDigitChunk, groups = a.K / GS;
  // A row's factors of the slice, kind 0 scales, 1 biases (rows past N repeat the last;
  // symmetric mode has no biases: kind 1 is the scales there, never read).
  auto factor_row = [&](int kind, int row) {
    const S* f = static_cast<const S*>(kind && !a.symmetric ? a.biases : a.scales);
    return f + static_cast<unsigned>(min(row0 + row, a.N - 1) * groups + c0 * G);
  };

  // W and its factors are not written by the kernel this one may overlap (the host launches
  // it early only then): the warp's rows of the slice are copied to shared memory now
  // (consecutive lanes, consecutive chunks of a row), the factors as the 4-byte words that
  // hold them; x is read after the wait.
  for (int p = lane; p < 16 * nch; p += 32) {
    const int row = p / nch, cl = p - row * nch;
    const unsigned piece = static_cast<unsigned>(min(row0 + row, a.N - 1) * row_chunks + c0 + cl);
    copy_async_16(wsm + cl * 16 + row, reinterpret_cast<const uint4*>(a.wq) + piece);
  }
  const int span = nch * G * static_cast<int>(sizeof(S));  // bytes a row
  for (int p = lane; p < (a.symmetric ? 1 : 2) * 16 * kDigitFactorWords; p += 32) {
    const int kind = p / (16 * kDigitFactorWords), row = p / kDigitFactorWords % 16;
    const int w = p % kDigitFactorWords;
    const char* base = reinterpret_cast<const char*>(factor_row(kind, row));
    const int off = static_cast<int>(reinterpret_cast<std::uintptr_t>(base) & 3);
    if (4 * w < off + span) copy_async_4_or_zeros(fsm + p, base - off + 4 * w, true);
  }
  copy_async_commit();
  wait_for_previous_kernel();
  allow_next_kernel();

  const X* x = static_cast<const X*>(a.x) + c0 * kDigitChunk;
  for (int gl = warp; gl < nch * G; gl += kDigitWarps)
    convert_group<GS, X>(x + gl * GS, lane, digits, gl * SPG, factors + gl * 4, quarter_sums + gl);
  copy_async_wait_all();
  __syncthreads();

  // This lane's rows' factors in shared memory (as bytes: a factor's offset in its word).
  const unsigned char* fs[2][2];  // [kind][row g, g + 8]
#pragma unroll
  for (int kind = 0; kind < 2; ++kind)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = g + 8 * h;
      const int off = static_cast<int>(reinterpret_cast<std::uintptr_t>(factor_row(kind, row)) & 3);
      fs[kind][h] = reinterpret_cast<const unsigned char*>(fsm + (kind * 16 + row) * kDigitFactorWords) + off;
    }
  auto factor = [&](int kind, int h, int j) {
    return to_float(*reinterpret_cast<const S*>(fs[kind][h] + j * sizeof(S)));
  };

  const std::uint32_t m0 = 0x01010101u << (2 * t), m1 = m0 << 1;
  float y0 = 0.f, y8 = 0.f;
  int d[4] = {0, 0, 0, 0};
  for (int c = 0; c < nch; ++c) {
    const uint4 u0 = wsm[c * 16 + g], u8 = wsm[c * 16 + g + 8];
    const std::uint32_t ws0[4] = {u0.x, u0.y, u0.z, u0.w}, ws8[4] = {u8.x, u8.y, u8.z, u8.w};
    const unsigned char* step = digits + c * 4 * kDigitStepBytes + lane * 8;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const std::uint32_t af[4] = {ws0[s] & m0, ws8[s] & m0, ws0[s] & m1, ws8[s] & m1};
      mma_u8s8(d, af, *reinterpret_cast<const uint2*>(step + s * kDigitStepBytes));
      if ((s + 1) % SPG == 0) {  // the group's last step: its factors, then fresh sums
        const int gl = c * G + s / SPG;
        const float f = factors[gl * 4 + t], xq = quarter_sums[gl];
        const float comb0 = static_cast<float>(d[0] + d[1] * 128);
        const float comb8 = static_cast<float>(d[2] + d[3] * 128);
        const float sc0 = factor(0, 0, gl), sc8 = factor(0, 1, gl);
        if (a.symmetric) {
          y0 = __fmaf_rn(comb0, 2.f * sc0 * f, __fmaf_rn(-sc0, xq, y0));
          y8 = __fmaf_rn(comb8, 2.f * sc8 * f, __fmaf_rn(-sc8, xq, y8));
        } else {
          y0 = __fmaf_rn(comb0, sc0 * f, __fmaf_rn(factor(1, 0, gl), xq, y0));
          y8 = __fmaf_rn(comb8, sc8 * f, __fmaf_rn(factor(1, 1, gl), xq, y8));
        }
        d[0] = d[1] = d[2] = d[3] = 0;
      }
    }
  }
  y0 += __shfl_xor_sync(0xffffffffu, y0, 1), y8 += __shfl_xor_sync(0xffffffffu, y8, 1);
  y0 += __shfl_xor_sync(0xffffffffu, y0, 2), y8 += __shfl_xor_sync(0xffffffffu, y8, 2);
  if (t == 0) partial[warp * 16 + g] = y0, partial[warp * 16 + g + 8] = y8;

  // The block's rows: the sum of the cluster's partial rows, by its first block.
  O* out = static_cast<O*>(a.out);
  const int r = threadIdx.x, n = static_cast<int>(blockIdx.x / ks) * kDigitRows + r;
#if __CUDA_ARCH__ >= 900
  if (ks > 1) {
    cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
    cluster.sync();
    if (rank == 0 && r < kDigitRows && n < a.N) {
      float v = partial[r];
      for (int q = 1; q < ks; ++q) v += cluster.map_shared_rank(partial, q)[r];
      out[n] = from_float<O>(v);
    }
    cluster.sync();  // the others' shared memory stays until it is read
    return;
  }
#endif
  __syncthreads();
  if (r < kDigitRows && n < a.N) out[n] = from_float<O>(partial[r]);
}

}  // namespace cuda
}  // namespace onebit

// Matrix-vector kernel for one row of x at 1 bit (a decode step): qmv_t's algebra
// (qmv.cuh), with all of x staged once per block as float32 in shared memory and
// blocks that stay resident and walk tiles of R rows of W, the next item's W
// words and factors loaded into registers while an item computes.
//   - An item: one 16-byte chunk (128 weights) of each of the tile's R rows per
//     lane, 32 chunks a warp; a row of K values is K / 4096 items (rounded up).
//   - x: one float4 of padding per 128 values, so the lanes of a warp (each
//     reading its own 128 values) hit distinct bank groups at fixed offsets;
//     the 32-value sums after it.
//   - Per weight bit one predicated add; per 4 weights one shared load of x for
//     the R rows; per group and row one scale (and bias) load.
// The lookup variant (qmv_lut_t, Lut = true) stages, instead of x, a table per 4
// consecutive values of x: the 16 sums of their subsets, so each 4 weight bits of a
// row (a nibble of its word) are a byte permute, a shared load and an add: about 0.85
// instructions a weight in the inner loop, where qmv_stream_t spends 2 a weight in all
// (ncu); the tables take 16 bytes per value of x, so K is shorter (lut_smem_bytes:
// 12288 in 227 KB).
#pragma once

#include <type_traits>

#include "qmv.cuh"

namespace onebit {
namespace cuda {

constexpr int kStreamWarps = 8;         // warps per block
constexpr int kStreamChunk = 128;       // weights per lane and row in an item (K % 128 == 0 here)

// Shared memory of qmv_stream_t for K values of x: padded float4 units, then the 32-value sums.
__host__ __device__ constexpr int stream_x_units(int K) { return K / kStreamChunk * 33; }
__host__ __device__ constexpr std::size_t stream_smem_bytes(int K) {
  return std::size_t(stream_x_units(K)) * 16 + std::size_t(K / 32) * 4;
}

// v = values 32 piece .. 32 piece + 31 of x as float32; returns their sum.
template <class X>
__device__ __forceinline__ float load_piece(const X* x, int piece, float (&v)[32]) {
  XPiece<X> xr;
  load_x32(x + std::int64_t(piece) * 32, xr);
  widen_x32(xr, v);
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < 32; ++j) s += v[j];
  return s;
}

// x (K values) as float32 into xs (chunk c's unit j at c * 33 + j) and its 32-value
// sums, by all threads of the block.
template <class X>
__device__ __forceinline__ void stage_x(const X* x, int K, float4* xs, float* sums) {
  for (int piece = threadIdx.x; piece < K / 32; piece += blockDim.x) {
    float v[32];
    const float s = load_piece(x, piece, v);
    float4* dst = xs + (piece >> 2) * 33 + (piece & 3) * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
    sums[piece] = s;
  }
}

// The lookup tables, in 64 KB per 4096 values of x (a lane step s of 32 chunks): entry i of
// position j of chunk c = 32 s + l (the sum of those of values 128 c + 4 j .. + 3 whose bit
// is set in i) at byte s * 65536 + i * 4096 + j * 128 + 4 l. A lane's byte offset for a
// nibble of its word is then one byte permute of the word (the nibble, pre-shifted to a
// byte's top, as byte 1; s and 4 l as bytes 2 and 0), j * 128 the load's immediate, and
// the 32 lanes of a load fall in 32 distinct banks. The 32-value sums follow the tables.
constexpr int kLutEntries = 16;
constexpr int kLutStepBytes = 65536;
__host__ __device__ constexpr std::size_t lut_smem_bytes(int K) {
  return std::size_t((K + 4095) / 4096) * kLutStepBytes + std::size_t(K / 32) * 4;
}

// Values 4q .. 4q + 3 of x as float32 (16-byte x rows: the load is aligned).
template <class X>
__device__ __forceinline__ void load_x4(const X* p, float (&v)[4]) {
  if constexpr (sizeof(X) == 4) {
    const float4 f = __ldg(reinterpret_cast<const float4*>(p));
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else {
    const uint2 u = __ldg(reinterpret_cast<const uint2*>(p));
    const X* e = reinterpret_cast<const X*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = to_float(e[i]);
  }
}

// x (K values) as the tables and the 32-value sums, by all threads of the block. Thread
// number t builds position j = t / 32 % 32 of chunk c = 32 (t / 1024) + t % 32, so a warp
// writes 32 consecutive floats per entry.
template <class X>
__device__ __forceinline__ void stage_lut(const X* x, int K, char* lut, float* sums) {
  const int chunks = K / kStreamChunk;
  for (int t = threadIdx.x; t < (chunks + 31) / 32 * 1024; t += blockDim.x) {
    const int l = t & 31, j = (t >> 5) & 31, s = t >> 10, c = 32 * s + l;
    if (c >= chunks) continue;
    float v[4], e[kLutEntries];
    load_x4(x + std::int64_t(c) * kStreamChunk + 4 * j, v);
    e[0] = 0.f;
#pragma unroll
    for (int b = 0; b < 4; ++b)
#pragma unroll
      for (int i = 0; i < (1 << b); ++i) e[(1 << b) + i] = e[i] + v[b];
    float* at = reinterpret_cast<float*>(lut + s * kLutStepBytes + j * 128 + 4 * l);
#pragma unroll
    for (int i = 0; i < kLutEntries; ++i) at[i * 1024] = e[i];
  }
  for (int piece = threadIdx.x; piece < K / 32; piece += blockDim.x) {
    float v[32];
    sums[piece] = load_piece(x, piece, v);
  }
}

// One lane's part of an item: its chunk of each of R rows and the factors of the
// G = 128 / GS groups the chunk spans.
template <int GS, class S, int R>
struct StreamItem {
  static constexpr int G = kStreamChunk / GS;
  std::uint32_t w[R][4];
  S scale[R][G], bias[R][G];
};

// The sums over the warp's lanes of R values (R a power of two <= 32) in R - 1 + log2(32 / R)
// shuffles instead of R warp_sum()s' 5 R: each of the first rounds halves the values a lane
// holds. Returns value r's sum (r set here), held by the lanes with (lane & (32 / R - 1)) == 0.
template <int R>
__device__ __forceinline__ float warp_sum_rows(float (&v)[R], int lane, int& r) {
  float part[R];
#pragma unroll
  for (int i = 0; i < R; ++i) part[i] = v[i];
  int base = 0;  // the first of the values this lane still holds
#pragma unroll
  for (int half = R / 2, off = 16; half >= 1; half /= 2, off /= 2) {
    const bool upper = lane & off;  // keeps the upper half of its values, sends the lower
#pragma unroll
    for (int i = 0; i < half; ++i) {
      const float send = upper ? part[i] : part[i + half];
      const float keep = upper ? part[i + half] : part[i];
      part[i] = keep + __shfl_xor_sync(0xffffffffu, send, off);
    }
    if (upper) base += half;
  }
  r = base;
  float s = part[0];
#pragma unroll
  for (int off = 16 / R; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
  return s;
}

// Walks the items of one warp: tile t (rows t * R ...), lane step s of the row.
struct StreamCursor {
  int t, s;
  __device__ __forceinline__ void advance(int steps, int stride) {
    if (++s == steps) s = 0, t += stride;
  }
};

template <int GS, class X, class S, int R>
struct StreamWarp {
  const KernelArgs& a;
  // Offsets are 32-bit: the host sends this kernel N * K / 32 < 2^31 (words of W).
  int lane, chunks, steps, tiles, stride, words, groups;

  // Row r of tile t (rows past N repeat the last; their sums are never stored).
  __device__ __forceinline__ int row(int t, int r) const { return min(t * R + r, a.N - 1); }

  __device__ __forceinline__ void load(StreamCursor k, StreamItem<GS, S, R>& it) const {
    constexpr int G = StreamItem<GS, S, R>::G;
    const int c = k.s * 32 + lane;
    if (k.t >= tiles || c >= chunks) return;
    const uint4* wq = reinterpret_cast<const uint4*>(a.wq);
    const S* scales = static_cast<const S*>(a.scales);
    const S* biases = static_cast<const S*>(a.biases);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int n = row(k.t, r);
      const uint4 u = __ldg(wq + static_cast<unsigned>(n * (words / 4) + c));
      it.w[r][0] = u.x, it.w[r][1] = u.y, it.w[r][2] = u.z, it.w[r][3] = u.w;
      const unsigned g0 = n * groups + c * G;
#pragma unroll
      for (int j = 0; j < G; ++j) {
        it.scale[r][j] = scales[g0 + j];
        if (!a.symmetric) it.bias[r][j] = biases[g0 + j];
      }
    }
  }

  // d[r][p]: the sum of the x values whose bits are set in word p of row r (chunk c; x
  // staged in xs): a predicated add per bit, a shared load of 4 x values per 4 bits.
  template <int CH>
  __device__ __forceinline__ void dots(int c, const StreamItem<GS, S, R>& it, const float4* xs,
                                       float (&d)[R][4]) const {
    const float4* xc = xs + c * 33;
#pragma unroll
    for (int p = 0; p < 4; ++p) {  // piece p: word p of each row
      float dot[R][CH] = {};  // CH chains a row: 1 / CH of the dependent-add latency
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const float4 q4 = xc[p * 8 + u];
        const float xv[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if ((it.w[r][p] >> (4 * u + e)) & 1u) dot[r][e % CH] += xv[e];
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        d[r][p] = dot[r][0];
#pragma unroll
        for (int i = 1; i < CH; ++i) d[r][p] += dot[r][i];
      }
    }
  }

  // The same from the lookup tables (stage_lut): per 4 bits a byte permute, a shared load
  // and an add.
  template <int CH>
  __device__ __forceinline__ void dots(int c, const StreamItem<GS, S, R>& it, const char* lut,
                                       float (&d)[R][4]) const {
    const std::uint32_t lane_bytes = std::uint32_t(c >> 5) * kLutStepBytes + std::uint32_t(c & 31) * 4;
#pragma unroll
    for (int p = 0; p < 4; ++p)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        // Nibble 2b of the word as byte b's top half, and nibble 2b + 1.
        const std::uint32_t even = (it.w[r][p] << 4) & 0xf0f0f0f0u, odd = it.w[r][p] & 0xf0f0f0f0u;
        float dot[CH];  // the first CH lookups start the chains (no adds to zero)
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          const std::uint32_t at = __byte_perm(u & 1 ? odd : even, lane_bytes, 0x7604u | ((u >> 1) << 4));
          const float v = *reinterpret_cast<const float*>(lut + at + (8 * p + u) * 128);
          dot[u % CH] = u < CH ? v : dot[u % CH] + v;
        }
        d[r][p] = dot[0];
#pragma unroll
        for (int i = 1; i < CH; ++i) d[r][p] += dot[i];
      }
  }

  // Adds the item's products to acc: x staged in `staged` (float4 units, or the lookup
  // tables), its 32-value sums in `sums`.
  template <int CH, class Staged>
  __device__ __forceinline__ void compute(StreamCursor k, const StreamItem<GS, S, R>& it, const Staged* staged,
                                          const float* sums, float (&acc)[R]) const {
    constexpr int G = StreamItem<GS, S, R>::G, PG = 4 / G;  // pieces (32 weights) per group
    const int c = k.s * 32 + lane;
    if (c >= chunks) return;
    const float4 s4 = reinterpret_cast<const float4*>(sums)[c];
    const float sp[4] = {s4.x, s4.y, s4.z, s4.w};
    float d[R][4];
    dots<CH>(c, it, staged, d);
#pragma unroll
    for (int j = 0; j < G; ++j) {
      float sx = 0.f;
#pragma unroll
      for (int p = j * PG; p < (j + 1) * PG; ++p) sx += sp[p];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float dr = 0.f;
#pragma unroll
        for (int p = j * PG; p < (j + 1) * PG; ++p) dr += d[r][p];
        const float sc = to_float(it.scale[r][j]);
        acc[r] += a.symmetric ? sc * (2.f * dr - sx) : fmaf(sc, dr, to_float(it.bias[r][j]) * sx);
      }
    }
  }
};

// M = 1, 1 bit, K % 128 == 0, rows of x and W 16-byte aligned. The grid may be smaller
// than the tiles: warp number q (of all) takes tiles q, q + warps in the grid, ...
// Dynamic shared memory: stream_smem_bytes(K), or lut_smem_bytes(K) with Lut (qmv_lut_t).
template <int GS, class X, class S, int R, bool Lut, int WARPS = kStreamWarps, int CH = 2>
__global__ void __launch_bounds__(WARPS * 32, 16 / WARPS) qmv_stream_t(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  using Item = StreamItem<GS, S, R>;
  extern __shared__ float4 smem[];
  using Staged = std::conditional_t<Lut, char, float4>;
  Staged* staged = reinterpret_cast<Staged*>(smem);
  float* sums = Lut ? reinterpret_cast<float*>(reinterpret_cast<char*>(smem) + (a.K + 4095) / 4096 * kLutStepBytes)
                    : reinterpret_cast<float*>(smem + stream_x_units(a.K));

  StreamWarp<GS, X, S, R> sw{a};
  sw.lane = threadIdx.x & 31;
  sw.chunks = a.K / kStreamChunk;
  sw.steps = (sw.chunks + 31) / 32;
  sw.tiles = (a.N + R - 1) / R;
  sw.stride = gridDim.x * WARPS;
  sw.words = a.K / 32;
  sw.groups = a.K / GS;

  StreamCursor cur{static_cast<int>(blockIdx.x * WARPS + (threadIdx.x >> 5)), 0};

  // W and its factors are not written by the kernel this one may overlap; x may be: the
  // first item is loaded before the wait, x after.
  Item items[2];
  sw.load(cur, items[0]);
  wait_for_previous_kernel();
  allow_next_kernel();
  if constexpr (Lut)
    stage_lut<X>(static_cast<const X*>(a.x), a.K, staged, sums);
  else
    stage_x<X>(static_cast<const X*>(a.x), a.K, staged, sums);
  __syncthreads();

  O* out = static_cast<O*>(a.out);
  float acc[R] = {};
  // Items alternate between two buffers (no register copies): one step of the loop is one item.
  auto step = [&](Item& now, Item& next) {
    StreamCursor nk = cur;
    nk.advance(sw.steps, sw.stride);
    sw.load(nk, next);
    sw.template compute<CH>(cur, now, staged, sums, acc);
    if (cur.s == sw.steps - 1) {  // the tile's last item: its rows are done
      int r;
      const float v = warp_sum_rows<R>(acc, sw.lane, r);
      const int n = cur.t * R + r;
      if ((sw.lane & (32 / R - 1)) == 0 && n < a.N) out[n] = from_float<O>(v);
#pragma unroll
      for (int i = 0; i < R; ++i) acc[i] = 0.f;
    }
    cur = nk;
  };
  while (cur.t < sw.tiles) {
    step(items[0], items[1]);
    if (cur.t >= sw.tiles) break;
    step(items[1], items[0]);
  }
}

}  // namespace cuda
}  // namespace onebit

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
#pragma once

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

// x (K values) as float32 into xs (chunk c's unit j at c * 33 + j) and its 32-value
// sums, by all threads of the block.
template <class X>
__device__ __forceinline__ void stage_x(const X* x, int K, float4* xs, float* sums) {
  for (int piece = threadIdx.x; piece < K / 32; piece += blockDim.x) {
    XPiece<X> xr;
    load_x32(x + std::int64_t(piece) * 32, xr);
    float v[32];
    widen_x32(xr, v);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 32; ++j) s += v[j];
    float4* dst = xs + (piece >> 2) * 33 + (piece & 3) * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
    sums[piece] = s;
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

  // Adds the item's products to acc (x staged in xs, sums).
  template <int CH>
  __device__ __forceinline__ void compute(StreamCursor k, const StreamItem<GS, S, R>& it, const float4* xs,
                                          const float* sums, float (&acc)[R]) const {
    constexpr int G = StreamItem<GS, S, R>::G, PG = 4 / G;  // pieces (32 weights) per group
    const int c = k.s * 32 + lane;
    if (c >= chunks) return;
    const float4* xc = xs + c * 33;
    const float4 s4 = reinterpret_cast<const float4*>(sums)[c];
    const float sp[4] = {s4.x, s4.y, s4.z, s4.w};
    float d[R][4];
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
template <int GS, class X, class S, int R, int WARPS = kStreamWarps, int CH = 2>
__global__ void __launch_bounds__(WARPS * 32, 16 / WARPS) qmv_stream_t(KernelArgs a) {
  using O = typename OutType<X, S>::type;
  using Item = StreamItem<GS, S, R>;
  extern __shared__ float4 smem[];
  float4* xs = smem;
  float* sums = reinterpret_cast<float*>(smem + stream_x_units(a.K));

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
  stage_x<X>(static_cast<const X*>(a.x), a.K, xs, sums);
  __syncthreads();

  O* out = static_cast<O*>(a.out);
  float acc[R] = {};
  // Items alternate between two buffers (no register copies): one step of the loop is one item.
  auto step = [&](Item& now, Item& next) {
    StreamCursor nk = cur;
    nk.advance(sw.steps, sw.stride);
    sw.load(nk, next);
    sw.template compute<CH>(cur, now, xs, sums, acc);
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

// Reading packed codes and turning them into products: the arithmetic every
// kernel shares.
//
// The packed row is a little-endian bit stream (src/common/format.h):
// element k occupies bits [k*bits, (k+1)*bits). Kernels read it in runs of n
// codes (n a multiple of 8) starting at an element that is a multiple of n,
// so a run starts on a byte boundary and, when its length is a whole number of
// words, on a word boundary too (packed rows are multiples of 32 codes, so
// whole words). One reader then serves every bit width, including 3/5/6
// whose codes straddle bytes and words.
#pragma once

#include <metal_stdlib>

#include "geometry.h"

using namespace metal;

namespace onebit {
namespace shader {

// Bytes of a run of n codes. (A function, not a static member: MSL wants
// static data members in the constant address space, C++ has none.)
constexpr int run_bytes(int bits, int n) { return n * bits / 8; }

// A run of n codes held in registers as little-endian 32-bit words.
template <int bits, int n>
struct CodeRun {
  static_assert((n * bits) % 8 == 0, "a run must end on a byte boundary");
  uint words[(run_bytes(bits, n) + 3) / 4];
};

// The run of n codes at element k of a packed row (k a multiple of n).
// Word-sized runs are read a word at a time, others a byte at a time.
// 32-bit offsets (Apple GPUs emulate 64-bit integer arithmetic): k is a
// multiple of 8, so its byte offset (k / 8) * bits stays below 2^31 for every
// K the planner accepts (< 2^30, planner.cpp kMaxDim).
template <int bits, int n>
inline CodeRun<bits, n> load_run(const device uint8_t* row, uint k) {
  CodeRun<bits, n> run;
  const device uint8_t* p = row + (k / 8u) * uint(bits);
  constexpr int bytes = run_bytes(bits, n);
  if (bytes % 4 == 0) {
    const device uint32_t* w = reinterpret_cast<const device uint32_t*>(p);
    for (int i = 0; i < bytes / 4; ++i) run.words[i] = w[i];
  } else {
    for (int i = 0; i < (bytes + 3) / 4; ++i) run.words[i] = 0u;
    for (int i = 0; i < bytes; ++i) run.words[i / 4] |= uint(p[i]) << (8 * (i % 4));
  }
  return run;
}

// Code i of a run. Callers unroll over i, so every shift and the straddle
// test fold to constants; for 1/2/4/8 bits the straddle branch disappears.
template <int bits, int n>
inline uint code(const thread CodeRun<bits, n>& run, int i) {
  const int bit = i * bits;
  const int shift = bit % 32;
  uint v = run.words[bit / 32] >> shift;
  if (shift + bits > 32) v |= run.words[bit / 32 + 1] << (32 - shift);
  return v & ((1u << bits) - 1u);
}

// sum_i code_i * x_i over a run. For 1 bit this is the sum of the x where the
// bit is set: the multiply by 0 or 1 is exact.
template <int bits, int n>
inline float dot_codes(const thread CodeRun<bits, n>& run, const thread float* x) {
  float acc = 0.0f;
  for (int i = 0; i < n; ++i) acc += float(code(run, i)) * x[i];
  return acc;
}

// A group's dequantized value as an affine function of its code:
// w_hat = q * code + one. Affine: scale * code + bias. Symmetric 1-bit:
// code ? +scale : -scale = 2*scale*code - scale. Hence per group
// sum_i w_hat_i x_i = q * sum_i code_i x_i + one * sum_i x_i, and the sum of
// x over a group is computed once and shared by every row that uses it.
struct GroupCoef {
  float q;
  float one;
};

template <typename T, bool symmetric>
inline GroupCoef group_coef(const device T* scales, const device T* biases, long group) {
  const float s = float(scales[group]);
  if (symmetric) return GroupCoef{2.0f * s, -s};  // biases (bound to scales) is not read
  return GroupCoef{s, float(biases[group])};
}

// W_hat of one code in float32 with a single rounding (exact in symmetric
// mode): the accurate form for kernels that do not share sums of x.
inline float dequantize_code(GroupCoef c, uint q) { return ::metal::fma(c.q, float(q), c.one); }

// n consecutive activations as float (exact for every T) and their sum.
template <typename T, int n>
inline float load_x(const device T* x, thread float* out) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    out[i] = float(x[i]);
    sum += out[i];
  }
  return sum;
}

}  // namespace shader
}  // namespace onebit

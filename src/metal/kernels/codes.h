// Reading packed codes and turning them into products: the arithmetic every
// kernel shares.
//
// The packed row is a little-endian bit stream (src/common/format.h):
// element k occupies bits [k*bits, (k+1)*bits). Kernels only read runs that
// start on a byte boundary (a run of n codes at element offset k with k*bits
// a multiple of 8), so one reader serves every bit width, including 3/5/6
// whose codes straddle bytes and words.
#pragma once

#include <metal_stdlib>

#include "geometry.h"

using namespace metal;

namespace onebit {
namespace shader {

// Code i of a run starting on a byte boundary. Callers unroll over i, so
// every shift and the straddle test fold to constants; for 1/2/4/8 bits the
// straddle branch disappears.
template <int bits>
inline uint code_at(const device uint8_t* run, int i) {
  const int bit = i * bits;
  const int shift = bit & 7;
  uint v = uint(run[bit >> 3]) >> shift;
  if (shift + bits > 8) v |= uint(run[(bit >> 3) + 1]) << (8 - shift);
  return v & ((1u << bits) - 1u);
}

// The bytes where the run of codes starting at element k of a packed row
// begins (k * bits must be a multiple of 8).
template <int bits>
inline const device uint8_t* run_at(const device uint8_t* row, long k) {
  return row + k * bits / 8;
}

// sum_i code_i * x_i over a run of n codes. For 1 bit this is the sum of the
// x where the bit is set: the multiply by 0 or 1 is exact.
template <int bits, int n>
inline float dot_codes(const device uint8_t* run, const thread float* x) {
  float acc = 0.0f;
  for (int i = 0; i < n; ++i) acc += float(code_at<bits>(run, i)) * x[i];
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
  if (symmetric) return GroupCoef{2.0f * s, -s};  // biases is unbound in symmetric mode
  return GroupCoef{s, float(biases[group])};
}

// W_hat of one code in float32 with a single rounding (exact in symmetric
// mode): the accurate form for kernels that do not share sums of x.
inline float dequantize_code(GroupCoef c, uint code) { return ::metal::fma(c.q, float(code), c.one); }

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

// quantize and dequantize: bit-for-bit the CPU reference (src/cpu/reference.cpp),
// so every float operation below keeps the reference's order and precision.
// Requirements on the host: compile with fast math off (MTLMathModeSafe, so
// division is correctly rounded) and keep the contraction pragma below in
// effect (no multiply-add fusion of `scale * q` and `+ bias`).
//
// Buffers (README.md, "quantize and dequantize"):
//   quantize    0 wq (out)  1 scales (out)  2 biases (out, unused symmetric)
//               3 w (in, rows x K of T)     4 QuantizeParams
//   dequantize  0 wq  1 scales  2 biases (unused symmetric)
//               3 y (out, rows x K of T)    4 QuantizeParams
// T is the dtype of w (quantize) or of the scales (dequantize). Groups are
// contiguous in w, scales and wq: group g is elements [g*gs, (g+1)*gs), scale
// g and words [g*gs*bits/32, (g+1)*gs*bits/32) (K is a multiple of gs).
#pragma once

#include <metal_stdlib>

#include "../../common/format_values.h"
#include "abi.h"
#include "codes.h"
#include "geometry.h"
#include "params.h"

using namespace metal;

// No multiply-add fusion below. The Metal compiler is clang-based; GCC builds
// of the emulator use -ffp-contract=off instead (setup.py).
#if defined(__METAL_VERSION__) || defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace onebit {
namespace shader {

struct AffineParams {
  float scale, bias;
};

// MLX's affine rule (reference.cpp affine_params).
inline AffineParams affine_params(float wmin, float wmax, int bits) {
  if (bits == 1) return AffineParams{::metal::max(wmax - wmin, ONEBIT_SCALE_FLOOR), wmin};
  const float n_bins = float((1 << bits) - 1);
  // |wmin| > |wmax| on the bits (the same order for finite floats): a GPU
  // that flushes float32 subnormals would see two subnormals as equal zeros
  // and flip the sign of the scale.
  const bool min_is_edge = (as_type<uint>(wmin) & 0x7fffffffu) > (as_type<uint>(wmax) & 0x7fffffffu);
  float scale = ::metal::max((wmax - wmin) / n_bins, ONEBIT_SCALE_FLOOR);
  scale = min_is_edge ? scale : -scale;
  const float edge = min_is_edge ? wmin : wmax;
  const float q0 = ::metal::rint(edge / scale);
  if (q0 == 0.0f) return AffineParams{scale, 0.0f};
  return AffineParams{edge / q0, edge};
}

// The bits that element e of a group contributes to word w of the group.
template <int bits>
inline uint word_piece(uint code, int e, int w) {
  const int lo = e * bits - 32 * w;  // position of the code's bit 0 in the word
  if (lo <= -bits || lo >= 32) return 0u;
  return lo >= 0 ? code << lo : code >> -lo;
}

// A finite float's place in the order of values, as an int computed from its
// bits: equal keys exactly for equal values (+0.0 and -0.0 alike). Integer
// comparisons keep subnormals apart where a GPU that flushes float32
// subnormals would compare them as zeros.
inline int order_key(float v) {
  const int b = as_type<int>(v);
  return b >= 0 ? b : -(b & 0x7fffffff);
}

// The group's minimum (or maximum) as the reference takes it, a sequential
// std::min (std::max) from element 0: the first element, in index order,
// equal to the extreme value. Only the sign of a zero depends on which one,
// but the order of simd_min/simd_max leaves exactly that to the
// implementation: found on keys, the element is returned bit for bit.
template <int per_lane, bool maximum>
inline float group_extreme(const thread float* v, uint lane) {
  int key = order_key(v[0]);
  for (int j = 1; j < per_lane; ++j)
    key = maximum ? ::metal::max(key, order_key(v[j])) : ::metal::min(key, order_key(v[j]));
  key = maximum ? simd_max(key) : simd_min(key);
  uint first = 0xffffffffu;
  for (int j = per_lane - 1; j >= 0; --j)
    if (order_key(v[j]) == key) first = uint(j) * uint(kSimdWidth) + lane;
  first = simd_min(first);  // an element index: 32 * slot + lane
  float mine = v[0];
  for (int j = 1; j < per_lane; ++j)
    if (uint(j) == first / uint(kSimdWidth)) mine = v[j];
  return simd_shuffle(mine, ushort(first % uint(kSimdWidth)));
}

// One simdgroup per group. Lane l holds elements l, l+32, ... (gs/32 of them).
template <typename T, int group_size, int bits, bool symmetric>
inline void quantize_group(device uint32_t* wq, device T* scales, device T* biases,
                           const device T* w, long group, uint lane) {
  constexpr int per_lane = group_size / kSimdWidth;
  constexpr int words = group_size * bits / 32;
  float v[per_lane];
  for (int j = 0; j < per_lane; ++j) v[j] = float(w[group * group_size + j * kSimdWidth + lane]);
  uint codes[per_lane];
  float scale, bias = 0.0f;
  if (symmetric) {
    // d = mean |w| with the reference's tree: v[i] += v[i + half] for half =
    // gs/2 .. 1. Halves >= 32 pair values inside a lane, then lanes.
    // Code 1 where w >= 0 (the reference's test, -0.0 included), decided on
    // the bits: a GPU that flushes float32 subnormals would read a negative
    // subnormal as -0.0 >= 0.
    for (int j = 0; j < per_lane; ++j) {
      const uint b = as_type<uint>(v[j]);
      codes[j] = (b >> 31) != 0u && (b & 0x7fffffffu) != 0u ? 0u : 1u;
    }
    for (int j = 0; j < per_lane; ++j) v[j] = ::metal::fabs(v[j]);
    for (int half_lanes = per_lane / 2; half_lanes >= 1; half_lanes /= 2)
      for (int j = 0; j < half_lanes; ++j) v[j] += v[j + half_lanes];
    float sum = v[0];
    for (ushort half_width = kSimdWidth / 2; half_width >= 1; half_width /= 2)
      sum += simd_shuffle_down(sum, half_width);  // lanes >= half_width: unused
    scale = sum / float(group_size);
  } else {
    const float wmin = group_extreme<per_lane, false>(v, lane);
    const float wmax = group_extreme<per_lane, true>(v, lane);
    const AffineParams p = affine_params(wmin, wmax, bits);
    const float n_bins = float((1 << bits) - 1);
    for (int j = 0; j < per_lane; ++j) {
      const float q = ::metal::rint((v[j] - p.bias) / p.scale);  // ties to even
      codes[j] = uint(::metal::clamp(q, 0.0f, n_bins));
    }
    scale = p.scale;
    bias = p.bias;
  }
  // Word w of the group gathers its codes from all lanes. The pieces of
  // different elements occupy disjoint bits, so their sum is their OR.
  for (int wi = 0; wi < words; ++wi) {
    uint piece = 0u;
    for (int j = 0; j < per_lane; ++j)
      piece |= word_piece<bits>(codes[j], j * kSimdWidth + int(lane), wi);
    const uint word = simd_sum(piece);
    if (lane == 0) wq[group * words + wi] = word;
  }
  if (lane == 0) {
    scales[group] = T(scale);
    if (!symmetric) biases[group] = T(bias);
  }
}

// One pack (32 values) per thread. As MLX: scale * q rounded to T, then
// + bias rounded to T; symmetric: +-scale.
template <typename T, int group_size, int bits, bool symmetric>
inline void dequantize_pack(const device uint32_t* wq, const device T* scales,
                            const device T* biases, device T* y, long pack) {
  const long e0 = pack * kPackValues;
  const long group = e0 / group_size;
  const float s = float(scales[group]);
  const float b = symmetric ? 0.0f : float(biases[group]);
  // The packed rows are contiguous: element e0 of the whole array.
  const CodeRun<bits, kPackValues> run =
      load_run<bits, kPackValues>(reinterpret_cast<const device uint8_t*>(wq), e0);
  for (int i = 0; i < kPackValues; ++i) {
    const uint q = code(run, i);
    if (symmetric) {
      y[e0 + i] = T(q ? s : -s);
    } else {
      const T sq = T(s * float(q));
      y[e0 + i] = T(float(sq) + b);
    }
  }
}

}  // namespace shader
}  // namespace onebit

// Grid: ceil(groups / kQuantizeSimdgroups) threadgroups of 32 * kQuantizeSimdgroups.
template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void quantize(device uint32_t* wq [[buffer(0)]], device T* scales [[buffer(1)]],
                         device T* biases [[buffer(2)]], const device T* w [[buffer(3)]],
                         constant onebit::shader::QuantizeParams& params [[buffer(4)]],
                         ONEBIT_THREAD_POSITION) {
  const long group = long(tgid.x) * onebit::shader::kQuantizeSimdgroups + simd_gid;
  // Uniform per simdgroup: a simdgroup past the end skips every collective.
  if (group >= long(params.rows) * (params.K / group_size)) return;
  onebit::shader::quantize_group<T, group_size, bits, symmetric>(wq, scales, biases, w, group,
                                                                 simd_lid);
}

// Grid: ceil(rows * K / 32 / kDequantizeThreads) threadgroups of kDequantizeThreads.
template <typename T, int group_size, int bits, bool symmetric>
[[kernel]] void dequantize(const device uint32_t* wq [[buffer(0)]],
                           const device T* scales [[buffer(1)]],
                           const device T* biases [[buffer(2)]], device T* y [[buffer(3)]],
                           constant onebit::shader::QuantizeParams& params [[buffer(4)]],
                           ONEBIT_THREAD_POSITION) {
  const long pack = long(tgid.x) * onebit::shader::kDequantizeThreads + lid.x;
  if (pack >= long(params.rows) * (params.K / onebit::shader::kPackValues)) return;
  onebit::shader::dequantize_pack<T, group_size, bits, symmetric>(wq, scales, biases, y, pack);
}

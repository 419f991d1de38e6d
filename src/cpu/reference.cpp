// Scalar reference: quantize, dequantize and the quantized matmul.
//
// quantize/dequantize reproduce MLX 0.32.4's CPU results bit for bit: the
// order and precision of every float operation below is part of the format.
// This file is compiled with -ffp-contract=off (see setup.py) so no compiler
// fuses a multiply and an add behind our back.
#include "reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../common/dtype.h"
#include "../common/format.h"

namespace onebit {

namespace {

struct GroupParams {
  float scale, bias;
};

// MLX's affine rule. 1-bit: scale = max(wmax - wmin, floor), bias = wmin.
// 2..8-bit: the extreme of larger magnitude is made exactly representable and
// zero falls on the grid.
GroupParams affine_params(float wmin, float wmax, int bits) {
  if (bits == 1) return {std::max(wmax - wmin, format::kScaleFloor), wmin};
  const float n_bins = static_cast<float>((1 << bits) - 1);
  const bool min_is_edge = std::abs(wmin) > std::abs(wmax);
  float scale = std::max((wmax - wmin) / n_bins, format::kScaleFloor);
  scale = min_is_edge ? scale : -scale;
  const float edge = min_is_edge ? wmin : wmax;
  const float q0 = std::rint(edge / scale);
  if (q0 == 0) return {scale, 0.0f};
  return {edge / q0, edge};
}

// Sum of |v| over a power-of-two length in a fixed binary tree (v[i] +=
// v[i + half], halving), in float32. The fixed order makes the symmetric scale
// reproducible by any kernel (a GPU reduction can follow the same tree), and
// a tree over equal magnitudes is exact, so {-d, +d} groups recover d exactly.
// Overwrites v.
float pairwise_abs_sum(float* v, int n) {
  for (int i = 0; i < n; ++i) v[i] = std::abs(v[i]);
  for (int half = n / 2; half >= 1; half /= 2)
    for (int i = 0; i < half; ++i) v[i] += v[i + half];
  return v[0];
}

template <class T>
void quantize_rows(const QuantizePlan& plan, std::uint32_t* wq, void* scales_out,
                   void* biases_out) {
  using S = typename T::storage;
  const S* w = static_cast<const S*>(plan.w.data);
  S* scales = static_cast<S*>(scales_out);
  S* biases = static_cast<S*>(biases_out);
  const int bits = plan.spec.bits, gs = plan.spec.group_size;
  const std::int64_t K = plan.K, groups = K / gs, words = format::words_per_row(K, bits);
  const float n_bins = static_cast<float>((1 << bits) - 1);
  std::vector<float> g(gs);

  std::memset(wq, 0, static_cast<std::size_t>(plan.rows * words) * 4);
  for (std::int64_t r = 0; r < plan.rows; ++r) {
    auto* row = reinterpret_cast<std::uint8_t*>(wq + r * words);
    for (std::int64_t j = 0; j < groups; ++j) {
      const std::int64_t base = r * K + j * gs;
      float wmin = INFINITY, wmax = -INFINITY;
      for (int i = 0; i < gs; ++i) {
        g[i] = T::load(w[base + i]);
        wmin = std::min(wmin, g[i]);
        wmax = std::max(wmax, g[i]);
      }
      const std::int64_t gi = r * groups + j;
      if (plan.spec.mode == Mode::symmetric) {
        // d = mean |w|, the least-squares scale for the sign pattern;
        // bit 1 for w >= 0, bit 0 for w < 0.
        for (int i = 0; i < gs; ++i)
          if (g[i] >= 0) format::write_code(row, j * gs + i, 1, 1);
        scales[gi] = T::store(pairwise_abs_sum(g.data(), gs) / static_cast<float>(gs));
        continue;
      }
      const GroupParams p = affine_params(wmin, wmax, bits);
      for (int i = 0; i < gs; ++i) {
        float q = std::rint((g[i] - p.bias) / p.scale);  // ties to even
        q = std::min(std::max(q, 0.0f), n_bins);
        format::write_code(row, j * gs + i, bits, static_cast<std::uint32_t>(q));
      }
      scales[gi] = T::store(p.scale);
      biases[gi] = T::store(p.bias);
    }
  }
}

// Value of code q in a group: what dequantize returns before its final
// rounding. Computed in float64 it is exact for every dtype and bit width.
inline double w_hat(std::uint32_t q, double scale, double bias, Mode mode) {
  return mode == Mode::affine ? scale * q + bias : (q ? scale : -scale);
}

template <class T>
void qmm_typed(const cpu::QmmArgs& a) {
  using S = typename T::storage;
  const S* scales = static_cast<const S*>(a.scales);
  const S* biases = static_cast<const S*>(a.biases);
  const int bits = a.spec.bits, gs = a.spec.group_size;
  const Mode mode = a.spec.mode;
  // W is stored as rows of packed codes: N rows of K (transpose) or K rows of N.
  const std::int64_t packed_len = a.transpose ? a.K : a.N;
  const std::int64_t words = format::words_per_row(packed_len, bits);
  const std::int64_t groups = packed_len / gs;
  auto weight = [&](std::int64_t row, std::int64_t col) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(a.wq + row * words);
    const std::int64_t gi = row * groups + col / gs;
    const double s = T::load(scales[gi]);
    const double b = mode == Mode::affine ? T::load(biases[gi]) : 0.0;
    return w_hat(format::read_code(bytes, col, bits), s, b, mode);
  };
  for (std::int64_t m = 0; m < a.M; ++m) {
    const float* x = a.x + m * a.K;
    for (std::int64_t n = 0; n < a.N; ++n) {
      double acc = 0;
      for (std::int64_t k = 0; k < a.K; ++k)
        acc += static_cast<double>(x[k]) * (a.transpose ? weight(n, k) : weight(k, n));
      a.out[m * a.N + n] = static_cast<float>(acc);
    }
  }
}

template <class T, class O>
void dequantize_rows(const DequantizePlan& plan, void* out_ptr) {
  using S = typename T::storage;
  const S* scales = static_cast<const S*>(plan.scales.data);
  const S* biases = static_cast<const S*>(plan.biases.data);
  auto* out = static_cast<typename O::storage*>(out_ptr);
  const int bits = plan.spec.bits, gs = plan.spec.group_size;
  const std::int64_t K = plan.K, groups = K / gs, words = format::words_per_row(K, bits);
  const auto* wq = static_cast<const std::uint32_t*>(plan.wq.data);
  for (std::int64_t r = 0; r < plan.rows; ++r) {
    const auto* row = reinterpret_cast<const std::uint8_t*>(wq + r * words);
    for (std::int64_t k = 0; k < K; ++k) {
      const std::int64_t gi = r * groups + k / gs;
      const float s = T::load(scales[gi]);
      const std::uint32_t q = format::read_code(row, k, bits);
      float v;
      if (plan.spec.mode == Mode::symmetric) {
        v = q ? s : -s;
      } else {
        // As MLX: scale * q rounded to the scales' dtype, then + bias rounded.
        const float sq = T::load(T::store(s * static_cast<float>(q)));
        v = T::load(T::store(sq + T::load(biases[gi])));
      }
      out[r * K + k] = O::store(v);
    }
  }
}

}  // namespace

void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, std::int64_t n) {
  visit_float(src_dtype, [&](auto in) {
    using I = decltype(in);
    visit_float(dst_dtype, [&](auto outt) {
      using O = decltype(outt);
      const auto* s = static_cast<const typename I::storage*>(src);
      auto* d = static_cast<typename O::storage*>(dst);
      for (std::int64_t i = 0; i < n; ++i) d[i] = O::store(I::load(s[i]));
    });
  });
}

namespace cpu {
void reference_quantize(const QuantizePlan& plan, std::uint32_t* wq, void* scales, void* biases) {
  visit_float(plan.w.dtype, [&](auto t) { quantize_rows<decltype(t)>(plan, wq, scales, biases); });
}

void reference_dequantize(const DequantizePlan& plan, void* out) {
  visit_float(plan.scales.dtype, [&](auto t) {
    visit_float(plan.out_dtype,
                [&](auto o) { dequantize_rows<decltype(t), decltype(o)>(plan, out); });
  });
}

void reference_qmm(const QmmArgs& args) {
  if (args.layout != WeightLayout::mlx) return run_deinterleaved(args, reference_qmm);
  visit_float(args.scale_dtype, [&](auto t) { qmm_typed<decltype(t)>(args); });
}
}  // namespace cpu

}  // namespace onebit

// Weight layouts: the public conversions and the permutations behind them.
#include "layout.h"

#include <algorithm>
#include <string>

#include "onebit/onebit.h"

namespace onebit {
namespace layout {

namespace {

// Calls f(interleaved index, mlx index) for every word of rows [n0, n1):
// the one definition of the layout that both directions use.
template <class Fn>
void for_each_word(std::int64_t N, std::int64_t W, std::int64_t n0, std::int64_t n1, Fn f) {
  for (std::int64_t b = n0; b < n1; b += kBlockRows) {
    const std::int64_t r = std::min(kBlockRows, N - b);
    for (std::int64_t n = b; n < b + r; ++n)
      for (std::int64_t w = 0; w < W; ++w) f(b * W + w * r + (n - b), n * W + w);
  }
}

}  // namespace

void deinterleave_rows(const std::uint32_t* src, std::int64_t N, std::int64_t W, std::int64_t n0,
                       std::int64_t n1, std::uint32_t* dst) {
  for_each_word(N, W, n0, n1, [&](std::int64_t i, std::int64_t m) { dst[m - n0 * W] = src[i]; });
}

void interleave(const std::uint32_t* src, std::int64_t N, std::int64_t W, std::uint32_t* dst) {
  for_each_word(N, W, 0, N, [&](std::int64_t i, std::int64_t m) { dst[i] = src[m]; });
}

}  // namespace layout

const char* layout_name(WeightLayout l) {
  return l == WeightLayout::mlx ? "mlx" : "interleaved16";
}

namespace {

void convert(const ArrayRef& wq, std::uint32_t* out, bool to_interleaved, const char* op) {
  if (wq.dtype != DType::uint32)
    throw TypeError(std::string("[") + op + "] wq must be uint32, got " +
                    (wq.dtype == DType::unsupported && !wq.label.empty() ? wq.label : dtype_name(wq.dtype)));
  if (wq.shape.size() < 2)
    throw ValueError(std::string("[") + op + "] wq must have at least 2 dimensions (rows, words)");
  for (std::int64_t d : wq.shape)
    if (d < 0) throw ValueError(std::string("[") + op + "] wq has a negative dimension");
  const std::int64_t N = wq.shape[wq.shape.size() - 2], W = wq.shape.back();
  const std::int64_t total = wq.size(), per = N * W;
  if (per == 0) return;
  const auto* src = static_cast<const std::uint32_t*>(wq.data);
  for (std::int64_t off = 0; off < total; off += per) {
    if (to_interleaved)
      layout::interleave(src + off, N, W, out + off);
    else
      layout::deinterleave_rows(src + off, N, W, 0, N, out + off);
  }
}

}  // namespace

void interleave16(const ArrayRef& wq, std::uint32_t* out) { convert(wq, out, true, "interleave16"); }
void deinterleave16(const ArrayRef& wq, std::uint32_t* out) { convert(wq, out, false, "deinterleave16"); }

}  // namespace onebit

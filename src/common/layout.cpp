// Weight layouts: the public conversions and the permutations behind them.
#include "layout.h"

#include <algorithm>
#include <string>

#include "checks.h"
#include "onebit/onebit.h"

namespace onebit {
namespace layout {

namespace {

// Calls f(interleaved index, mlx index) for every element of rows [n0, n1):
// the one definition of the layout, which both directions use.
template <class Fn>
void for_each_element(std::int64_t N, std::int64_t C, std::int64_t n0, std::int64_t n1, Fn f) {
  for (std::int64_t b = n0; b < n1; b += kBlockRows) {
    const std::int64_t r = std::min(kBlockRows, N - b);
    for (std::int64_t n = b; n < b + r; ++n)
      for (std::int64_t c = 0; c < C; ++c) f(b * C + c * r + (n - b), n * C + c);
  }
}

// Calls f(T{}) with T the unsigned integer type of `elem` bytes (2 or 4).
template <class Fn>
void with_element_type(std::size_t elem, Fn f) {
  if (elem == 2)
    f(std::uint16_t{});
  else
    f(std::uint32_t{});
}

}  // namespace

void deinterleave_rows(const void* src, std::size_t elem, std::int64_t N, std::int64_t C,
                       std::int64_t n0, std::int64_t n1, void* dst) {
  with_element_type(elem, [&](auto t) {
    using T = decltype(t);
    const T* s = static_cast<const T*>(src);
    T* d = static_cast<T*>(dst);
    for_each_element(N, C, n0, n1, [&](std::int64_t i, std::int64_t m) { d[m - n0 * C] = s[i]; });
  });
}

void interleave(const void* src, std::size_t elem, std::int64_t N, std::int64_t C, void* dst) {
  with_element_type(elem, [&](auto t) {
    using T = decltype(t);
    const T* s = static_cast<const T*>(src);
    T* d = static_cast<T*>(dst);
    for_each_element(N, C, 0, N, [&](std::int64_t i, std::int64_t m) { d[i] = s[m]; });
  });
}

}  // namespace layout

const char* layout_name(WeightLayout l) {
  return l == WeightLayout::mlx ? "mlx" : "interleaved16";
}

namespace {

void convert(const ArrayRef& a, void* out, bool to_interleaved, const char* op) {
  if (a.dtype == DType::unsupported)
    type_error(op, "a must be uint32, float32, float16 or bfloat16, got " + dtype_of(a));
  if (a.shape.size() < 2) value_error(op, "a must have at least 2 dimensions (rows, columns)");
  check_array(a, op, "a");
  const std::size_t elem = dtype_size(a.dtype);
  const std::int64_t N = a.shape[a.shape.size() - 2], C = a.shape.back();
  const std::int64_t total = a.size(), per = N * C;
  if (per == 0) return;
  for (std::int64_t off = 0; off < total; off += per) {
    const void* src = static_cast<const char*>(a.data) + off * elem;
    void* dst = static_cast<char*>(out) + off * elem;
    if (to_interleaved)
      layout::interleave(src, elem, N, C, dst);
    else
      layout::deinterleave_rows(src, elem, N, C, 0, N, dst);
  }
}

}  // namespace

void interleave16(const ArrayRef& a, void* out) { convert(a, out, true, "interleave16"); }
void deinterleave16(const ArrayRef& a, void* out) { convert(a, out, false, "deinterleave16"); }

}  // namespace onebit

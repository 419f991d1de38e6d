// Typed access to the float dtypes of the format, for code templated on the
// storage type of activations, scales and outputs.
#pragma once

#include <cstdint>

#include "onebit/onebit.h"
#include "half.h"

namespace onebit {

struct Float32 {
  using storage = float;
  static constexpr DType dtype = DType::float32;
  static float load(storage v) { return v; }
  static storage store(float v) { return v; }
};
struct Float16 {
  using storage = std::uint16_t;
  static constexpr DType dtype = DType::float16;
  static float load(storage v) { return half_to_float(v); }
  static storage store(float v) { return float_to_half(v); }
};
struct BFloat16 {
  using storage = std::uint16_t;
  static constexpr DType dtype = DType::bfloat16;
  static float load(storage v) { return bf16_to_float(v); }
  static storage store(float v) { return float_to_bf16(v); }
};

inline bool is_float_dtype(DType d) {
  return d == DType::float32 || d == DType::float16 || d == DType::bfloat16;
}

// Calls f(Float32{}), f(Float16{}) or f(BFloat16{}) for a float dtype.
template <class F>
decltype(auto) visit_float(DType d, F&& f) {
  switch (d) {
    case DType::float16: return f(Float16{});
    case DType::bfloat16: return f(BFloat16{});
    default: return f(Float32{});  // callers validated d with is_float_dtype
  }
}

// Converts n values between any two float dtypes (exact when widening).
void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, std::int64_t n);

}  // namespace onebit

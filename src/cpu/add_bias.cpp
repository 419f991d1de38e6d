// onebit::add_bias: y[r, j] = y[r, j] + bias[j], rounded to y's dtype, as NumPy's
// np.add(y, bias, out=y, casting="unsafe") computes it for these dtypes (each value
// widened to float32, added in float32, rounded to nearest even), with the active ISA's
// conversions: NumPy's float16 loop costs ~7 ns a value, as much as a small layer's product.
#include <algorithm>

#include "../common/dtype.h"
#include "isa.h"

namespace onebit {

void add_bias(void* y, DType y_dtype, std::int64_t rows, std::int64_t n, const void* bias,
              DType bias_dtype) {
  const std::size_t ysize = dtype_size(y_dtype), bsize = dtype_size(bias_dtype);
  if (ysize == 0 || bsize == 0 || y_dtype == DType::uint32 || bias_dtype == DType::uint32)
    throw ValueError("[add_bias] y and bias must be float32, float16 or bfloat16");
  if (rows < 0 || n < 0) throw ValueError("[add_bias] rows and n must be >= 0");
  const cpu::Isa& isa = cpu::active_isa();
  const bool widen = y_dtype != DType::float32;  // else y is added to in place
  constexpr std::int64_t kChunk = 512;  // values of a row at a time, in float32 on the stack
  float b[kChunk], v[kChunk];
  for (std::int64_t j0 = 0; j0 < n; j0 += kChunk) {
    const std::int64_t c = std::min(kChunk, n - j0);
    isa.convert(static_cast<const char*>(bias) + j0 * bsize, bias_dtype, b, DType::float32, c);
    for (std::int64_t r = 0; r < rows; ++r) {
      char* yr = static_cast<char*>(y) + (r * n + j0) * ysize;
      float* f = widen ? v : reinterpret_cast<float*>(yr);
      if (widen) isa.convert(yr, y_dtype, v, DType::float32, c);
      for (std::int64_t i = 0; i < c; ++i) f[i] += b[i];
      if (widen) isa.convert(v, DType::float32, yr, y_dtype, c);
    }
  }
}

}  // namespace onebit

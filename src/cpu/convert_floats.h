// The backend's widening of float16 / bfloat16 activations to float32 and narrowing
// of float32 results, L values at a time with the ISA's conversions. Part of
// qmm_kernels.h: included only through it.
//
// The same values as the scalar conversions of half.h (round to nearest even,
// subnormals kept, overflow to infinity, NaN to a quiet NaN with the payload's top
// bits): each ISA's store_f16 / store_bf16 / load_f16 / load_bf16 says how. The
// scalar loop cost a decode step 4-10 ns a value (two branches and a rebias per
// value), as much as the product itself for small matrices.

template <class V>
void convert_floats(const void* src, DType from, void* dst, DType to, std::int64_t n) {
  constexpr int L = V::L;
  std::int64_t i = 0;
  const bool narrow_in = from == DType::float16 || from == DType::bfloat16;
  const bool narrow_out = to == DType::float16 || to == DType::bfloat16;
  if (narrow_in && to == DType::float32) {
    const auto* s = static_cast<const std::uint16_t*>(src);
    auto* d = static_cast<float*>(dst);
    if (from == DType::float16)
      for (; i + L <= n; i += L) V::store(d + i, V::load_f16(s + i));
    else
      for (; i + L <= n; i += L) V::store(d + i, V::load_bf16(s + i));
  } else if (from == DType::float32 && narrow_out) {
    const auto* s = static_cast<const float*>(src);
    auto* d = static_cast<std::uint16_t*>(dst);
    if (to == DType::float16)
      for (; i + L <= n; i += L) V::store_f16(d + i, V::load(s + i));
    else
      for (; i + L <= n; i += L) V::store_bf16(d + i, V::load(s + i));
  }
  // The tail, and any other pair of dtypes, value by value.
  const std::size_t in = dtype_size(from), out = dtype_size(to);
  convert(static_cast<const char*>(src) + i * in, from, static_cast<char*>(dst) + i * out, to, n - i);
}

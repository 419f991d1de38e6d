// The AVX-512 intrinsics src/cpu/avx512.cpp uses, on machines without
// AVX-512: SIMDe's portable implementations (Debian's libsimde-dev), plus
// the few that its 0.7 release lacks, written here lane by lane. Included
// by avx512.cpp only when built with ONEBIT_AVX512_ON_SIMDE, which
// tests/test_avx512_simde.py does; never part of the library.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include "../../src/common/half.h"

typedef simde__mmask16 __mmask16;

namespace avx512_on_simde {

template <class T, int N>
struct Lanes {
  T v[N];
};

template <class T, int N, class Vec>
Lanes<T, N> lanes(const Vec& v) {
  static_assert(sizeof(Vec) == sizeof(T) * N, "lane count");
  Lanes<T, N> l;
  std::memcpy(l.v, &v, sizeof v);
  return l;
}

template <class Vec, class T, int N>
Vec vec(const Lanes<T, N>& l) {
  static_assert(sizeof(Vec) == sizeof(T) * N, "lane count");
  Vec v;
  std::memcpy(&v, l.v, sizeof v);
  return v;
}

inline bool on(__mmask16 k, int i) { return (k >> i) & 1; }

}  // namespace avx512_on_simde

// Halves, then quarters, ... as compilers expand it.
inline float _mm512_reduce_add_ps(__m512 a) {
  auto l = avx512_on_simde::lanes<float, 16>(a);
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) l.v[i] = l.v[i] + l.v[i + w];
  return l.v[0];
}

inline __m512 _mm512_mask3_fmadd_ps(__m512 a, __m512 b, __m512 c, __mmask16 k) {
  auto la = avx512_on_simde::lanes<float, 16>(a), lb = avx512_on_simde::lanes<float, 16>(b);
  auto lc = avx512_on_simde::lanes<float, 16>(c);
  for (int i = 0; i < 16; ++i)
    if (avx512_on_simde::on(k, i)) lc.v[i] = std::fma(la.v[i], lb.v[i], lc.v[i]);
  return avx512_on_simde::vec<__m512>(lc);
}

inline __m512i _mm512_cvtepu8_epi32(__m128i a) {
  const auto la = avx512_on_simde::lanes<std::uint8_t, 16>(a);
  avx512_on_simde::Lanes<std::int32_t, 16> r;
  for (int i = 0; i < 16; ++i) r.v[i] = la.v[i];
  return avx512_on_simde::vec<__m512i>(r);
}

inline __m512i _mm512_cvtepu16_epi32(__m256i a) {
  const auto la = avx512_on_simde::lanes<std::uint16_t, 16>(a);
  avx512_on_simde::Lanes<std::int32_t, 16> r;
  for (int i = 0; i < 16; ++i) r.v[i] = la.v[i];
  return avx512_on_simde::vec<__m512i>(r);
}

inline __m512 _mm512_cvtepi32_ps(__m512i a) {
  const auto la = avx512_on_simde::lanes<std::int32_t, 16>(a);
  avx512_on_simde::Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r.v[i] = static_cast<float>(la.v[i]);
  return avx512_on_simde::vec<__m512>(r);
}

inline __m512 _mm512_cvtph_ps(__m256i a) {
  const auto la = avx512_on_simde::lanes<std::uint16_t, 16>(a);
  avx512_on_simde::Lanes<float, 16> r;
  for (int i = 0; i < 16; ++i) r.v[i] = onebit::half_to_float(la.v[i]);
  return avx512_on_simde::vec<__m512>(r);
}

// Masked-off lanes are neither read nor written, as on the hardware.
inline __m512i _mm512_maskz_loadu_epi32(__mmask16 k, const void* p) {
  avx512_on_simde::Lanes<std::int32_t, 16> r;
  for (int i = 0; i < 16; ++i) {
    r.v[i] = 0;
    if (avx512_on_simde::on(k, i)) std::memcpy(&r.v[i], static_cast<const char*>(p) + 4 * i, 4);
  }
  return avx512_on_simde::vec<__m512i>(r);
}

inline void _mm512_mask_storeu_ps(void* p, __mmask16 k, __m512 a) {
  const auto la = avx512_on_simde::lanes<float, 16>(a);
  for (int i = 0; i < 16; ++i)
    if (avx512_on_simde::on(k, i)) std::memcpy(static_cast<char*>(p) + 4 * i, &la.v[i], 4);
}

// AVX-512 variant of the CPU kernels (x86-64; compiles to nothing elsewhere).
//
// The 1-bit trick: a 16-bit chunk of the packed weights IS an AVX-512 lane
// mask, so `x where bit = 1` is one masked add, with no decode at all.
#include "kernel_includes.h"

#if ONEBIT_CPU_X86
#if defined(ONEBIT_AVX512_ON_SIMDE)
// Tests only (tests/test_avx512_simde.py): the same intrinsics from portable
// implementations (tests/native), compiled for the baseline target, so
// these kernels run, slowly, on CPUs without AVX-512.
#include "avx512_on_simde.h"
#else
#include <immintrin.h>
#endif

// GCC 12's own AVX-512 headers initialise their "undefined" vectors with
// themselves (`__m512i __Y = __Y;`), which -Wall reports once per use.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// The features the code below uses; checked at run time before any call.
#define ONEBIT_AVX512_FEATURES "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"

#if !defined(ONEBIT_AVX512_ON_SIMDE)
ONEBIT_TARGET_PUSH(ONEBIT_AVX512_FEATURES)
#endif

namespace onebit {
namespace cpu {
namespace {

struct Avx512 {
  static constexpr int L = 16;
  static constexpr KernelTuning kTune = kAvx512Tuning;
  using F = __m512;
  using Mask = __mmask16;

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(F v) { return _mm512_reduce_add_ps(v); }

  // Little-endian: bit i of the 16-bit chunk is lane i (a kmov: faster than
  // a broadcast + vptestmd).
  static Mask mask(const std::uint8_t* bits, std::int64_t v) {
    std::uint16_t m;
    std::memcpy(&m, bits + 2 * v, 2);
    return m;
  }
  // Form 1 is x*1 + acc as one FMA: the same single rounding as the add,
  // but it runs on the FMA units, which sit idle in the 1-bit kernels (on
  // Zen 4 the adds and FMAs have separate pipes), so alternating the two
  // forms doubles the masked-add throughput.
  template <int Form>
  static F mask_add(F acc, Mask m, F x) {
    if constexpr (Form == 0)
      return _mm512_mask_add_ps(acc, m, acc, x);
    else
      return _mm512_mask3_fmadd_ps(x, _mm512_set1_ps(1.0f), acc, m);
  }
  static F select(Mask m, F off, F on) { return _mm512_mask_blend_ps(m, off, on); }

  template <int B>
  static F codes(const std::uint8_t* p) {
    if constexpr (B == 8) {
      return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    } else {
      // Lane i's code sits in 32-bit word (i*B)/32 at bit (i*B)%32: gather
      // the word into the lane, shift it down, mask it. (The loads read
      // exactly the 16*B/8 bytes of the codes.)
      const __m128i bytes = B == 4 ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))
                                   : _mm_cvtsi32_si128(load_u32(p));
      const __m512i bit = _mm512_setr_epi32(0 * B, 1 * B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B, 8 * B,
                                            9 * B, 10 * B, 11 * B, 12 * B, 13 * B, 14 * B, 15 * B);
      const __m512i words = _mm512_permutexvar_epi32(_mm512_srli_epi32(bit, 5), _mm512_castsi128_si512(bytes));
      const __m512i v = _mm512_srlv_epi32(words, _mm512_and_si512(bit, _mm512_set1_epi32(31)));
      return _mm512_cvtepi32_ps(_mm512_and_si512(v, _mm512_set1_epi32((1 << B) - 1)));
    }
  }
  static int load_u32(const std::uint8_t* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }

  // The table-lookup kernel (qmm_lut.h): vpermps, 16 entries.
  using I = __m512i;
  static F lookup(I idx, F table) { return _mm512_permutexvar_ps(idx, table); }  // uses idx & 15
  // An FMA by 1 (the same single rounding as an add): on Zen 4 the shifts
  // to the next index share their pipes with the FP adds, while the FMA
  // pipes are otherwise idle here.
  static F lut_add(F acc, F v) { return _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f), acc); }
  template <int S>
  static I shift_right(I idx) { return _mm512_srli_epi32(idx, S); }
#if defined(ONEBIT_AVX512_ON_SIMDE)
  static void keep_in_register(F&) {}  // SIMDe's vectors are structs, not registers
#else
  static void keep_in_register(F& v) { __asm__("" : "+v"(v)); }
#endif
  static I load_bytes(const std::uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I load_words(const void* p, int n) {  // n < 16 words; the rest zero, unread
    return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1u), p);
  }
  static I load_words(const void* p) { return _mm512_loadu_si512(p); }
  static I words(F v) { return _mm512_castps_si512(v); }
  static F floats(I v) { return _mm512_castsi512_ps(v); }
  static void store_words(std::uint32_t* p, I v) { _mm512_storeu_si512(p, v); }
  static void store_first(float* p, F v, int n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
  }
  // r[i] lane d -> r[d] lane i: 32-bit elements within 128-bit lanes, then
  // pairs of them, then whole 128-bit lanes (64 shuffles).
  static void transpose(I r[16]) {
    I a[16], b[16];
    for (int i = 0; i < 16; i += 2) {
      a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
      a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int q = 0; q < 16; q += 4) {  // b[q + e]: rows q..q+3 of element 4L+e in each 128-bit lane L
      b[q] = _mm512_unpacklo_epi64(a[q], a[q + 2]);
      b[q + 1] = _mm512_unpackhi_epi64(a[q], a[q + 2]);
      b[q + 2] = _mm512_unpacklo_epi64(a[q + 1], a[q + 3]);
      b[q + 3] = _mm512_unpackhi_epi64(a[q + 1], a[q + 3]);
    }
    for (int e = 0; e < 4; ++e) {
      const I s0 = _mm512_shuffle_i32x4(b[e], b[4 + e], 0x88), s1 = _mm512_shuffle_i32x4(b[e], b[4 + e], 0xdd);
      const I s2 = _mm512_shuffle_i32x4(b[8 + e], b[12 + e], 0x88), s3 = _mm512_shuffle_i32x4(b[8 + e], b[12 + e], 0xdd);
      r[e] = _mm512_shuffle_i32x4(s0, s2, 0x88);
      r[8 + e] = _mm512_shuffle_i32x4(s0, s2, 0xdd);
      r[4 + e] = _mm512_shuffle_i32x4(s1, s3, 0x88);
      r[12 + e] = _mm512_shuffle_i32x4(s1, s3, 0xdd);
    }
  }

  static F load_f16(const std::uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F load_bf16(const std::uint16_t* p) {  // bfloat16 is the top half of a float32
    const __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
  }
  static void store_f16(std::uint16_t* p, F v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  // Not vcvtneps2bf16, which flushes subnormals to zero.
  static void store_bf16(std::uint16_t* p, F v) {
    const __m512i u = _mm512_castps_si512(v), top = _mm512_srli_epi32(u, 16);
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(top, _mm512_set1_epi32(1)))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    const __m512i h = _mm512_mask_or_epi32(rounded, nan, top, _mm512_set1_epi32(0x40));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(h));
  }
};

#include "qmm_kernels.h"

}  // namespace

void avx512_qmm(const QmmArgs& args) { qmm<Avx512>(args); }
void avx512_convert(const void* src, DType from, void* dst, DType to, std::int64_t n) {
  convert_floats<Avx512>(src, from, dst, to, n);
}

}  // namespace cpu
}  // namespace onebit

#if !defined(ONEBIT_AVX512_ON_SIMDE)
ONEBIT_TARGET_POP()
#endif

namespace onebit {
namespace cpu {
bool avx512_supported() {
#if defined(ONEBIT_AVX512_ON_SIMDE)
  return true;
#else
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         x86_has_f16c();
#endif
}
}  // namespace cpu
}  // namespace onebit

#endif  // ONEBIT_CPU_X86

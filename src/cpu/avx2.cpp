// AVX2 + FMA variant of the CPU kernels (x86-64; compiles to nothing elsewhere).
//
// No mask registers here: in the row and column kernels a byte of packed
// 1-bit weights becomes a lane mask by a lookup in a 256-entry table of lane
// masks (8 KiB, stays in L1). The lookup kernel (transpose=True, 1 bit,
// and 2 bits at M = 1) instead indexes 8-entry tables of sums of x with 3
// bits at a time.
#include "kernel_includes.h"

#if ONEBIT_CPU_X86
#include <immintrin.h>

// The features the code below uses; checked at run time before any call.
#define ONEBIT_AVX2_FEATURES "avx2,fma,f16c"

ONEBIT_TARGET_PUSH(ONEBIT_AVX2_FEATURES)

namespace onebit {
namespace cpu {
namespace {

// kLaneMasks.m[b][i] = all ones if bit i of byte b is set, else zero.
struct LaneMasks {
  alignas(32) std::uint32_t m[256][8];
};
constexpr LaneMasks make_lane_masks() {
  LaneMasks t{};
  for (int b = 0; b < 256; ++b)
    for (int i = 0; i < 8; ++i) t.m[b][i] = ((b >> i) & 1) ? 0xffffffffu : 0u;
  return t;
}
constexpr LaneMasks kLaneMasks = make_lane_masks();

struct Avx2 {
  static constexpr int L = 8;
  static constexpr KernelTuning kTune = kAvx2Tuning;
  using F = __m256;
  using Mask = __m256;  // all-ones / all-zeros lanes

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  static Mask mask(const std::uint8_t* bits, std::int64_t v) {
    return _mm256_load_ps(reinterpret_cast<const float*>(kLaneMasks.m[bits[v]]));
  }
  template <int Form>  // one form only: the and+add pair has no FMA twin worth having
  static F mask_add(F acc, Mask m, F x) {
    return _mm256_add_ps(acc, _mm256_and_ps(m, x));
  }
  static F select(Mask m, F off, F on) { return _mm256_blendv_ps(off, on, m); }

  template <int B>
  static F codes(const std::uint8_t* p) {
    if constexpr (B == 8) {
      return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    } else {
      // All 8 codes fit in one 32-bit word: broadcast it, shift lane i down
      // by i*B bits, mask.
      std::uint32_t word = 0;
      std::memcpy(&word, p, L * B / 8);
      const __m256i shift = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(B));
      const __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shift);
      return _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32((1 << B) - 1)));
    }
  }

  // The table-lookup kernel (qmm_lut.h): vpermps, 8 entries.
  using I = __m256i;
  static F lookup(I idx, F table) { return _mm256_permutevar8x32_ps(table, idx); }  // uses idx & 7
  // A plain add: on Zen 3 the FMA-by-1 form of the AVX-512 file was slower.
  static F lut_add(F acc, F v) { return _mm256_add_ps(acc, v); }
  template <int S>
  static I shift_right(I idx) { return _mm256_srli_epi32(idx, S); }
  static void keep_in_register(F& v) { __asm__("" : "+x"(v)); }
  static I lanes_below(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static I load_words(const void* p, int n) {  // n < 8 words; the rest zero, unread
    return _mm256_maskload_epi32(static_cast<const int*>(p), lanes_below(n));
  }
  static I load_words(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  // The rows kernel's byte decode (qmm_rows.h):
  // 8 bytes, one per lane; the low B bits of each lane as a float.
  static I load_bytes(const std::uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  template <int B>
  static F low_codes(I q) { return _mm256_cvtepi32_ps(_mm256_and_si256(q, _mm256_set1_epi32((1 << B) - 1))); }
  static I words(F v) { return _mm256_castps_si256(v); }
  static F floats(I v) { return _mm256_castsi256_ps(v); }
  static void store_words(void* p, I v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
  static void store_first(float* p, F v, int n) { _mm256_maskstore_ps(p, lanes_below(n), v); }
  // r[i] lane d -> r[d] lane i: 32-bit elements within 128-bit lanes, then
  // pairs of them, then the 128-bit halves (24 shuffles).
  static void transpose(I r[8]) {
    I a[8], b[8];
    for (int i = 0; i < 8; i += 2) {
      a[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
      a[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int q = 0; q < 8; q += 4) {  // b[q + e]: rows q..q+3 of elements e and e + 4
      b[q] = _mm256_unpacklo_epi64(a[q], a[q + 2]);
      b[q + 1] = _mm256_unpackhi_epi64(a[q], a[q + 2]);
      b[q + 2] = _mm256_unpacklo_epi64(a[q + 1], a[q + 3]);
      b[q + 3] = _mm256_unpackhi_epi64(a[q + 1], a[q + 3]);
    }
    for (int e = 0; e < 4; ++e) {
      r[e] = _mm256_permute2x128_si256(b[e], b[4 + e], 0x20);
      r[4 + e] = _mm256_permute2x128_si256(b[e], b[4 + e], 0x31);
    }
  }

  static F load_f16(const std::uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F load_bf16(const std::uint16_t* p) {  // bfloat16 is the top half of a float32
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
  static void store_f16(std::uint16_t* p, F v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static void store_bf16(std::uint16_t* p, F v) {
    const __m256i u = _mm256_castps_si256(v), top = _mm256_srli_epi32(u, 16);
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(top, _mm256_set1_epi32(1)))), 16);
    // |u| > inf as signed int32: both sides are non-negative.
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    const __m256i h = _mm256_blendv_epi8(rounded, _mm256_or_si256(top, _mm256_set1_epi32(0x40)), nan);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                     _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
  }
};

#include "qmm_kernels.h"

}  // namespace

void avx2_qmm(const QmmArgs& args) { qmm<Avx2>(args); }
void avx2_convert(const void* src, DType from, void* dst, DType to, std::int64_t n) {
  convert_floats<Avx2>(src, from, dst, to, n);
}

}  // namespace cpu
}  // namespace onebit

ONEBIT_TARGET_POP()

namespace onebit {
namespace cpu {
bool avx2_supported() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         x86_has_f16c();
}
}  // namespace cpu
}  // namespace onebit

#endif  // ONEBIT_CPU_X86

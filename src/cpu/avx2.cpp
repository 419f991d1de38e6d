// AVX2 + FMA variant of the CPU kernels (x86-64; compiles to nothing elsewhere).
//
// No mask registers here: a byte of packed 1-bit weights becomes a lane mask
// by a lookup in a 256-entry table of lane masks (8 KiB, stays in L1).
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
  static constexpr int kRowsM1 = 4, kTileM = 2, kTileN = 2;
  static constexpr int kColRows = 1, kColVecs = 8;
  static constexpr bool kLut = false;  // no 16-entry table lookup
  static constexpr int kMR = 6;
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

  static F load_f16(const std::uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F load_bf16(const std::uint16_t* p) {  // bfloat16 is the top half of a float32
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
};

#include "qmm_kernels.h"

}  // namespace

void avx2_qmm(const QmmArgs& args) { qmm<Avx2>(args); }
WeightLayout avx2_preferred_layout(const QuantSpec& spec) { return preferred_layout<Avx2>(spec); }

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

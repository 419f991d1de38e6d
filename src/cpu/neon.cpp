// NEON variant of the CPU kernels (aarch64, where NEON is baseline: no
// target switch and no run-time check; compiles to nothing elsewhere).
#include "kernel_includes.h"

#if ONEBIT_CPU_ARM64
#include <arm_neon.h>

namespace onebit {
namespace cpu {
namespace {

struct Neon {
  static constexpr int L = 4;
  static constexpr KernelTuning kTune = kNeonTuning;  // no float table lookup in registers
  using F = float32x4_t;
  using Mask = uint32x4_t;  // all-ones / all-zeros lanes

  static F zero() { return vdupq_n_f32(0.0f); }
  static F set1(float v) { return vdupq_n_f32(v); }
  static F load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, F v) { vst1q_f32(p, v); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F fma(F a, F b, F c) { return vfmaq_f32(c, a, b); }
  static float hsum(F v) { return vaddvq_f32(v); }

  // Four lanes take half a byte: vector v is the low (even v) or high nibble.
  static Mask mask(const std::uint8_t* bits, std::int64_t v) {
    const std::uint32_t nibble = (bits[v >> 1] >> ((v & 1) * 4)) & 0xfu;
    const std::uint32_t sel_bits[4] = {1, 2, 4, 8};
    return vtstq_u32(vdupq_n_u32(nibble), vld1q_u32(sel_bits));
  }
  template <int Form>  // one form only: the and+add pair has no FMA twin worth having
  static F mask_add(F acc, Mask m, F x) {
    return vaddq_f32(acc, vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(x))));
  }
  static F select(Mask m, F off, F on) { return vbslq_f32(m, on, off); }

  // The 4 codes fit in one 32-bit word: broadcast it, shift lane i right by
  // i*B bits (a negative left shift), mask.
  template <int B>
  static F codes(const std::uint8_t* p) {
    std::uint32_t word = 0;
    std::memcpy(&word, p, L * B / 8);
    const std::int32_t shifts[4] = {0, -B, -2 * B, -3 * B};
    const uint32x4_t v = vshlq_u32(vdupq_n_u32(word), vld1q_s32(shifts));
    return vcvtq_f32_u32(vandq_u32(v, vdupq_n_u32((1u << B) - 1u)));
  }

  static F load_f16(const std::uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static F load_bf16(const std::uint16_t* p) {  // bfloat16 is the top half of a float32
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
  }
  static void store_f16(std::uint16_t* p, F v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }
  static void store_bf16(std::uint16_t* p, F v) {
    const uint32x4_t u = vreinterpretq_u32_f32(v), top = vshrq_n_u32(u, 16);
    const uint32x4_t rounded = vshrq_n_u32(vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), vandq_u32(top, vdupq_n_u32(1)))), 16);
    const uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffff)), vdupq_n_u32(0x7f800000));
    vst1_u16(p, vmovn_u32(vbslq_u32(nan, vorrq_u32(top, vdupq_n_u32(0x40)), rounded)));
  }
};

#include "qmm_kernels.h"

}  // namespace

void neon_qmm(const QmmArgs& args) { qmm<Neon>(args); }
void neon_convert(const void* src, DType from, void* dst, DType to, std::int64_t n) {
  convert_floats<Neon>(src, from, dst, to, n);
}

}  // namespace cpu
}  // namespace onebit

#endif  // ONEBIT_CPU_ARM64

// The SIMD quantized-matmul kernels, written once as templates over a traits
// struct V that each ISA file (avx512.cpp, avx2.cpp, neon.cpp) defines.
//
// Include this file only from an ISA file, inside its target region and
// inside an unnamed namespace, after kernel_includes.h: neither it nor the
// headers it pulls in have an #include of their own, so that nothing shared
// gets compiled for the ISA (see isa.h).
//
// Which kernel runs is decided in one place, choose_cpu_kernel
// (kernel_choice.cpp), from the ISA's row of kernel_tuning.h; qmm<V> below
// only runs that choice. Every kernel multiplies the exact float32
// activations and accumulates in float32; only the summation order differs
// from the reference.

// The traits contract: what V must provide (L = float32 lanes of a vector).
// Checked when an ISA file instantiates qmm<V>, so a missing member fails
// here, by name, rather than deep inside a kernel.
//   F, Mask                    a vector of L floats, a lane mask
//   kTune                      the ISA's row of kernel_tuning.h
//   zero() set1(f) load(p) store(p, v) add(a, b) fma(a, b, c) = a*b + c, hsum(v)
//   mask(bits, v)              the L bits v*L .. v*L+L-1 of a packed 1-bit row
//   mask_add<Form>(acc, m, x)  acc + (m ? x : 0), lane by lane; Form 0 or 1
//                              picks one of two equivalent instruction forms
//                              (the kernels alternate them across accumulators)
//   codes<B>(p)                the L codes of B bits (2, 4 or 8) from byte p, as floats
//   load_f16(p) load_bf16(p)   L widened half / bfloat16 values
//   store_f16(p, v) store_bf16(p, v)  v narrowed to L half / bfloat16 values at p,
//                              rounded as half.h rounds (convert_floats.h)
// With a table lookup (kTune.lut_bits = P > 0, L = 2^P), for the lookup
// kernel (qmm_lut.h) and the row kernel's byte decode (qmm_rows.h):
//   I                          a vector of L int32
//   lookup(idx, table)         table[idx mod 2^P] lane by lane
//   lut_add(acc, v)            acc + v with one rounding, in whichever pipes the
//                              lookups and shifts leave free
//   shift_right<S>(idx)        idx >> S (lane by lane)
//   keep_in_register(v)        an empty asm that makes v a register value there
//   load_words(p) load_words(p, n)  the L (or n < L, zeros after, the rest unread)
//                              32-bit words at p
//   store_words(p, v)          the L 32-bit words of v to p
//   store_first(p, v, n)       the first n < L floats of v to p
//   transpose(r)               transposes L vectors r[0..L-1] as an L x L matrix
//   words(f) floats(i)         the same bits as the other type
//   load_bytes(p)              L bytes from p, one per lane, zero-extended
//   low_codes<B>(i)            the low B bits of each lane as floats; only where
//                              a B-bit code is wider than the lookup's index
//                              (B > P: AVX2's 4-bit codes)
// (The checks name vector types as template arguments, which drops their
// alignment attributes: harmless in an unevaluated comparison.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
template <class V>
constexpr bool traits_contract() {
  using F = typename V::F;
  using Mask = typename V::Mask;
  static_assert(std::is_same_v<decltype(V::kTune), const KernelTuning>, "V::kTune: the ISA's tuning row");
  static_assert(std::is_same_v<decltype(V::zero()), F> && std::is_same_v<decltype(V::set1(0.f)), F>);
  static_assert(std::is_same_v<decltype(V::load(static_cast<const float*>(nullptr))), F>);
  static_assert(std::is_void_v<decltype(V::store(static_cast<float*>(nullptr), F{}))>);
  static_assert(std::is_same_v<decltype(V::add(F{}, F{})), F> && std::is_same_v<decltype(V::fma(F{}, F{}, F{})), F>);
  static_assert(std::is_same_v<decltype(V::hsum(F{})), float>);
  static_assert(std::is_same_v<decltype(V::mask(static_cast<const std::uint8_t*>(nullptr), 0)), Mask>);
  static_assert(std::is_same_v<decltype(V::template mask_add<0>(F{}, Mask{}, F{})), F> &&
                std::is_same_v<decltype(V::template mask_add<1>(F{}, Mask{}, F{})), F>);
  static_assert(std::is_same_v<decltype(V::template codes<2>(static_cast<const std::uint8_t*>(nullptr))), F>);
  static_assert(std::is_same_v<decltype(V::load_f16(static_cast<const std::uint16_t*>(nullptr))), F> &&
                std::is_same_v<decltype(V::load_bf16(static_cast<const std::uint16_t*>(nullptr))), F>);
  static_assert(std::is_void_v<decltype(V::store_f16(static_cast<std::uint16_t*>(nullptr), F{}))> &&
                std::is_void_v<decltype(V::store_bf16(static_cast<std::uint16_t*>(nullptr), F{}))>);
  constexpr int P = V::kTune.lut_bits;
  if constexpr (P > 0) {
    using I = typename V::I;
    static_assert(V::L == 1 << P, "a lookup table is one vector");
    static_assert(std::is_same_v<decltype(V::lookup(I{}, F{})), F> && std::is_same_v<decltype(V::lut_add(F{}, F{})), F>);
    static_assert(std::is_same_v<decltype(V::template shift_right<1>(I{})), I>);
    static_assert(std::is_void_v<decltype(V::keep_in_register(std::declval<F&>()))>);
    static_assert(std::is_same_v<decltype(V::load_words(static_cast<const void*>(nullptr))), I> &&
                  std::is_same_v<decltype(V::load_words(static_cast<const void*>(nullptr), 0)), I>);
    static_assert(std::is_void_v<decltype(V::store_words(static_cast<std::uint32_t*>(nullptr), I{}))>);
    static_assert(std::is_void_v<decltype(V::store_first(static_cast<float*>(nullptr), F{}, 0))>);
    static_assert(std::is_void_v<decltype(V::transpose(static_cast<I*>(nullptr)))>);
    static_assert(std::is_same_v<decltype(V::words(F{})), I> && std::is_same_v<decltype(V::floats(I{})), F>);
    static_assert(std::is_same_v<decltype(V::load_bytes(static_cast<const std::uint8_t*>(nullptr))), I>);
    if constexpr (P < 4) static_assert(std::is_same_v<decltype(V::template low_codes<4>(I{})), F>);
    if constexpr (P < 2) static_assert(std::is_same_v<decltype(V::template low_codes<2>(I{})), F>);
  }
  return true;
}
#pragma GCC diagnostic pop

#include "convert_floats.h"
#include "qmm_common.h"
#include "qmm_rows.h"
#include "qmm_lut.h"
#include "qmm_cols.h"
#include "qmm_panel.h"

// Runs the kernel the backend chose (a.kernel, from choose_cpu_kernel).
template <class V>
void qmm(const QmmArgs& a) {
  static_assert(traits_contract<V>());
  if (a.M == 0 || a.N == 0) return;
  if (a.kernel == CpuKernel::zero) {  // an empty sum; the kernels below assume at least one group
    std::fill(a.out, a.out + a.M * a.N, 0.0f);
    return;
  }
  visit<format::kBits>(a.spec.bits, [&](auto b) {
    constexpr int B = decltype(b)::value;
    if constexpr (lut_serves(V::kTune, B)) {
      if (a.kernel == CpuKernel::lut) return qmm_lut<V, B>(a);
    }
    // Only the lookup kernel reads interleaved16 W.
    if (a.layout != WeightLayout::mlx) return run_deinterleaved(a, qmm<V>);
    Factors f;
    make_factors<V>(a, f);
    if constexpr (has_vector_decode(B)) {
      if (a.kernel == CpuKernel::rows) return qmm_rows<V, B>(a, f);
      if (a.kernel == CpuKernel::cols) return qmm_cols<V, B>(a, f);
    }
    if (a.kernel != CpuKernel::panel)
      throw std::logic_error(std::string("[cpu] kernel '") + kernel_name(a.kernel) + "' has no " + V::kTune.isa +
                             " variant for " + std::to_string(B) + "-bit codes");
    qmm_panel<V, B>(a, f);
  });
}

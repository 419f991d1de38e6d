// Runs a SIMD kernel variant (argv[1], default "neon") against the scalar
// reference on random problems, after its float16 / bfloat16 conversions against
// half.h's, bit for bit. Built for aarch64 and run under qemu by
// tests/test_neon.py; natively with AddressSanitizer and
// UndefinedBehaviorSanitizer for the x86 variants by tests/test_sanitizers.py;
// with the AVX-512 intrinsics on SIMDe by tests/test_avx512_simde.py.
// Compiled together with the core sources (no Python involved), by
// tests/native_build.py. `isa_check bound K SUM REF float32|float16` prints
// the error bound instead (test_error_bound.py compares it with Python's).
//
// Tolerance: tests/error_bound.py's, its constants passed as ONEBIT_BOUND_* macros:
//   |out - ref| <= 8 sqrt(K) 2^-24 sum_k |x_k w_hat_k| + ulp(output dtype) |ref| + floor.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../src/common/half.h"
#include "../../src/cpu/isa.h"
#include "onebit/onebit.h"

using onebit::ArrayRef;
using onebit::DType;

#ifndef ONEBIT_BOUND_FACTOR
#error "the error bound's constants come from tests/error_bound.py (cpp_macros): build with tests/native_build.py"
#endif

namespace {

// tests/error_bound.py's matmul_error_bound for float32 and float16 outputs.
double error_bound(std::int64_t K, double sum_terms, double ref, DType out) {
  const bool f32 = out == DType::float32;
  return ONEBIT_BOUND_FACTOR * std::sqrt(double(std::max<std::int64_t>(K, 1))) * ONEBIT_BOUND_ROUNDOFF * sum_terms +
         (f32 ? ONEBIT_BOUND_ULP_F32 : ONEBIT_BOUND_ULP_F16) * std::fabs(ref) +
         (f32 ? ONEBIT_BOUND_FLOOR_F32 : ONEBIT_BOUND_FLOOR_F16);
}

std::mt19937 rng(12345);
std::string isa = "neon";  // the variant under test

std::vector<float> normal(std::size_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

// An array of the given dtype holding `values` (rounded to it).
struct Buffer {
  std::vector<float> f32;
  std::vector<std::uint16_t> f16;
  DType dtype;
  Buffer(const std::vector<float>& values, DType dt) : dtype(dt) {
    if (dt == DType::float32)
      f32 = values;
    else
      for (float v : values) f16.push_back(onebit::float_to_half(v));
  }
  explicit Buffer(std::size_t n, DType dt) : dtype(dt) {
    if (dt == DType::float32)
      f32.resize(n);
    else
      f16.resize(n);
  }
  void* data() { return dtype == DType::float32 ? static_cast<void*>(f32.data()) : f16.data(); }
  float at(std::size_t i) const { return dtype == DType::float32 ? f32[i] : onebit::half_to_float(f16[i]); }
  ArrayRef ref(std::vector<std::int64_t> shape) {
    ArrayRef r;
    r.data = data();
    r.dtype = dtype;
    r.shape = std::move(shape);
    return r;
  }
};

int failures = 0, cases = 0;

void run_case(bool transpose, int bits, onebit::Mode mode, int gs, std::int64_t M, std::int64_t N,
              std::int64_t K, DType dtype, int threads) {
  const std::int64_t rows = transpose ? N : K, len = transpose ? K : N;
  Buffer w(normal(static_cast<std::size_t>(rows * len)), dtype);
  onebit::QuantSpec spec{bits, gs, mode};
  const onebit::QuantizePlan qp = onebit::plan_quantize(w.ref({rows, len}), spec);
  std::vector<std::uint32_t> wq(static_cast<std::size_t>(rows * len * bits / 32));
  const std::size_t ngroups = static_cast<std::size_t>(rows * len / gs);
  Buffer scales(ngroups, dtype), biases(ngroups, dtype);
  const bool affine = mode == onebit::Mode::affine;
  onebit::quantize(qp, wq.data(), scales.data(), affine ? biases.data() : nullptr);

  // |w_hat| per weight, for the tolerance.
  ArrayRef wq_ref;
  wq_ref.data = wq.data();
  wq_ref.dtype = DType::uint32;
  wq_ref.shape = {rows, len * bits / 32};
  ArrayRef s_ref = scales.ref({rows, len / gs}), b_ref = biases.ref({rows, len / gs});
  const DType f32 = DType::float32;
  const onebit::DequantizePlan dp = onebit::plan_dequantize(wq_ref, s_ref, affine ? &b_ref : nullptr, spec, &f32);
  std::vector<float> mag(static_cast<std::size_t>(rows * len));
  onebit::dequantize(dp, mag.data());
  for (float& v : mag) v = std::fabs(v);

  Buffer x(normal(static_cast<std::size_t>(M * K)), dtype);
  const onebit::MatmulPlan mp = onebit::plan_quantized_matmul(
      x.ref({M, K}), wq_ref, s_ref, affine ? &b_ref : nullptr, transpose, spec);
  Buffer ref(static_cast<std::size_t>(M * N), mp.out_dtype), out(static_cast<std::size_t>(M * N), mp.out_dtype);
  onebit::set_cpu_kernel("scalar");
  onebit::quantized_matmul(mp, ref.data(), "cpu");
  onebit::set_cpu_kernel(isa);
  onebit::set_num_threads(threads);

  // The ISA's result for `plan` against the scalar reference's.
  auto check = [&](const onebit::MatmulPlan& plan) {
    onebit::quantized_matmul(plan, out.data(), "cpu");
    ++cases;
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) {
        double sum_terms = 0;
        for (std::int64_t k = 0; k < K; ++k)
          sum_terms += std::fabs(x.at(m * K + k)) * mag[transpose ? n * K + k : k * N + n];
        const double r = ref.at(m * N + n), o = out.at(m * N + n);
        const double tol = error_bound(K, sum_terms, r, mp.out_dtype);
        if (!(std::fabs(o - r) <= tol)) {
          if (++failures <= 10)
            std::printf("FAIL transpose=%d bits=%d mode=%s gs=%d M=%lld N=%lld K=%lld dtype=%s layout=%s "
                        "(%lld,%lld): %s %.9g scalar %.9g tol %.3g\n",
                        transpose, bits, onebit::mode_name(mode), gs, (long long)M, (long long)N, (long long)K,
                        onebit::dtype_name(dtype), onebit::layout_name(plan.layout), (long long)m, (long long)n,
                        isa.c_str(), o, r, tol);
          return;
        }
      }
  };
  check(mp);
  if (!transpose) return;
  // The same weight in the interleaved16 layout (converted back in slabs here).
  std::vector<std::uint32_t> wq16(wq.size());
  Buffer scales16(ngroups, dtype), biases16(ngroups, dtype);
  ArrayRef wq16_ref = wq_ref, s16_ref = scales16.ref({rows, len / gs}), b16_ref = biases16.ref({rows, len / gs});
  wq16_ref.data = wq16.data();
  onebit::interleave16(wq_ref, wq16.data());
  onebit::interleave16(s_ref, scales16.data());
  if (affine) onebit::interleave16(b_ref, biases16.data());
  check(onebit::plan_quantized_matmul(x.ref({M, K}), wq16_ref, s16_ref, affine ? &b16_ref : nullptr, true, spec,
                                      onebit::WeightLayout::interleaved16));
}

// The variant's conversions (the backend's widening of x and narrowing of results)
// against half.h's, bit for bit, except that a widened NaN need only be a NaN (x86
// quiets a signalling one): every float16 and bfloat16 value widened, and narrowed
// float32 values at and around every rounding boundary (each 16-bit top half with low
// halves at the float16 and bfloat16 ties and their neighbours) and random ones. The
// lengths leave a scalar tail after the vectors.
void check_conversions() {
  const onebit::cpu::Isa* variant = nullptr;
  for (const onebit::cpu::Isa& i : onebit::cpu::compiled_isas())
    if (isa == i.name) variant = &i;
  const auto bits = [](float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  };
  int bad = 0;
  for (DType half : {DType::float16, DType::bfloat16}) {
    const bool f16 = half == DType::float16;
    std::vector<std::uint16_t> h(65536 + 3);
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint16_t>(i);
    std::vector<float> wide(h.size());
    variant->convert(h.data(), half, wide.data(), DType::float32, static_cast<std::int64_t>(h.size()));
    for (std::size_t i = 0; i < h.size(); ++i) {
      const float want = f16 ? onebit::half_to_float(h[i]) : onebit::bf16_to_float(h[i]);
      const bool ok = std::isnan(want) ? std::isnan(wide[i]) : bits(wide[i]) == bits(want);
      if (!ok && ++bad <= 5)
        std::printf("FAIL %s widening of %s 0x%04x: 0x%08x, want 0x%08x\n", isa.c_str(), onebit::dtype_name(half),
                    h[i], bits(wide[i]), bits(want));
    }
    std::vector<float> f;
    for (std::uint32_t top = 0; top < 65536; ++top)
      for (std::uint32_t low : {0x0000u, 0x0001u, 0x0fffu, 0x1000u, 0x1001u, 0x1fffu, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) {
        const std::uint32_t u = top << 16 | low;
        float v;
        std::memcpy(&v, &u, 4);
        f.push_back(v);
      }
    for (int i = 0; i < 100003; ++i) {
      const std::uint32_t u = static_cast<std::uint32_t>(rng());
      float v;
      std::memcpy(&v, &u, 4);
      f.push_back(v);
    }
    std::vector<std::uint16_t> narrow(f.size());
    variant->convert(f.data(), DType::float32, narrow.data(), half, static_cast<std::int64_t>(f.size()));
    for (std::size_t i = 0; i < f.size(); ++i) {
      const std::uint16_t want = f16 ? onebit::float_to_half(f[i]) : onebit::float_to_bf16(f[i]);
      if (narrow[i] != want && ++bad <= 5)
        std::printf("FAIL %s narrowing of 0x%08x to %s: 0x%04x, want 0x%04x\n", isa.c_str(), bits(f[i]),
                    onebit::dtype_name(half), narrow[i], want);
    }
  }
  ++cases;
  if (bad) ++failures;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "bound") {
    const DType out = std::string(argv[5]) == "float16" ? DType::float16 : DType::float32;
    std::printf("%.17g\n", error_bound(std::atoll(argv[2]), std::atof(argv[3]), std::atof(argv[4]), out));
    return 0;
  }
  if (argc > 1) isa = argv[1];
  bool supported = false;
  for (const std::string& name : onebit::cpu_kernels_supported()) supported |= name == isa;
  if (!supported) {
    std::printf("%s kernel not available in this build\n", isa.c_str());
    return 2;
  }
  check_conversions();
  onebit::cpu::set_parallel_threshold(0);  // every case through the thread pool
  int threads = 1;
  for (bool transpose : {true, false})
    for (int bits : onebit::supported_bits())
      for (onebit::Mode mode : {onebit::Mode::affine, onebit::Mode::symmetric}) {
        if (mode == onebit::Mode::symmetric && bits != 1) continue;
        for (int gs : onebit::supported_group_sizes())
          for (std::int64_t M : {1, 3, 70})
            for (std::int64_t groups : {1, 5}) {
              const std::int64_t K = groups * gs, N = transpose ? 37 : 2 * gs;
              const DType dt = (M == 3) ? DType::float16 : DType::float32;
              threads = threads % 3 + 1;
              run_case(transpose, bits, mode, gs, M, N, K, dt, threads);
            }
      }
  // The panel kernel (M = 35: past the row kernel's 32) over several tasks
  // along N, the last one partial (a task is kPanels = 8 panels of 2L
  // columns: 128 columns with AVX2, 256 with AVX-512, 64 with NEON), with a
  // tail of x rows and a K that crosses every ISA's panel depth.
  for (bool transpose : {true, false})
    for (int bits : {2, 3})
      run_case(transpose, bits, onebit::Mode::affine, 64, 35, transpose ? 277 : 320, 640, DType::float32, 2);
  // The row kernel's last x rows, fewer than a tile (kTileM = 2, 3 and 4
  // with NEON, AVX-512 and AVX2): M = 5, 6, 7 leave every remainder.
  for (int bits : {2, 4, 8})
    for (std::int64_t M : {5, 6, 7}) run_case(true, bits, onebit::Mode::affine, 64, M, 37, 256, DType::float32, 2);
  std::printf("%s: %d cases, %d failed\n", failures ? "FAILED" : "ok", cases, failures);
  return failures ? 1 : 0;
}

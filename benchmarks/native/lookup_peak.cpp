// The register-only peak of the 1-bit lookup kernel's inner step on AVX-512
// (docs/decode.md): per 32-bit word of 16 rows (512 weights), shifts, 16-lane
// table lookups and FMA-adds into independent accumulators, with no loads:
// vpermps (16-entry tables, 8 lookups) against vpermt2ps (32-entry tables, 7
// lookups). A chain of dependent adds gives the core clock, for cycles.
//   g++ -O2 -w -o /tmp/lookup_peak benchmarks/native/lookup_peak.cpp && /tmp/lookup_peak
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double core_ghz() {
  const long n = 100000000;
  std::uint64_t x = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i)  // 8 dependent adds: one per cycle
    asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
  return 8.0 * n / seconds_since(t0) / 1e9;
}

template <int P, int J>
__attribute__((target("avx512f"))) double weights_per_ns() {
  const long n = 50000000;
  __m512 lo = _mm512_set1_ps(1.0f), hi = _mm512_set1_ps(2.0f), acc[J];
  __m512i q = _mm512_set1_epi32(0x12345678);
  for (auto& a : acc) a = _mm512_setzero_ps();
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    asm volatile("" : "+v"(q), "+v"(lo), "+v"(hi));  // a new word and tables each step
#pragma GCC unroll 8
    for (int c = 0; c < J; ++c) {  // unrolled: the accumulators stay in registers
      const __m512i idx = _mm512_srli_epi32(q, P * c);
      const __m512 v = P == 4 ? _mm512_permutexvar_ps(idx, lo) : _mm512_permutex2var_ps(lo, idx, hi);
      acc[c] = _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f), acc[c]);
    }
  }
  const double s = seconds_since(t0);
  float sum = 0;
  for (auto& a : acc) sum += _mm512_reduce_add_ps(a);
  if (sum == 42.0f) std::puts("");  // keeps the sums alive
  return 512.0 * n / s / 1e9;
}

}  // namespace

int main() {
  if (!__builtin_cpu_supports("avx512f")) {
    std::puts("needs AVX-512");
    return 1;
  }
  for (int round = 0; round < 3; ++round) {
    const double ghz = core_ghz(), p4 = weights_per_ns<4, 8>(), p5 = weights_per_ns<5, 7>();
    std::printf("core %.2f GHz; vpermps %.1f weights/ns (%.1f per cycle); vpermt2ps %.1f (%.1f per cycle)\n", ghz,
                p4, p4 / ghz, p5, p5 / ghz);
  }
}

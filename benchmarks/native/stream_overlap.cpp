// Can one core overlap a DRAM stream with the 1-bit lookup kernel's arithmetic?
// (docs/decode.md) A model of the kernel's access pattern, not the kernel: passes of
// 32 KB read as four interleaved 8 KB streams (interleaved16's four 16-row blocks
// at K = 4096), per 64-byte line `work` x 4 shift / vpermps / FMA steps whose
// tables come from a 64 KB buffer (the x tables), and optionally a prefetcht1 of
// the same line of the next pass (one pass ahead). Rates are bytes of the stream
// per second, best of 5 rounds:
//   hot:  a 512 KB buffer read again and again (L2);
//   cold: 128 MB, once (DRAM), without and with the software prefetch.
// Full overlap: cold+prefetch == min(hot, the DRAM rate of work 0).
// Pages: 2 MB (madvise) unless ONEBIT_4K_PAGES is set.
//   g++ -O2 -mavx512f -mavx512bw -o /tmp/stream_overlap benchmarks/native/stream_overlap.cpp && /tmp/stream_overlap
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr std::size_t kStreams = 4, kStreamBytes = 8192, kPass = kStreams * kStreamBytes, kTableBytes = 65536;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <bool Prefetch>
__attribute__((noinline)) float run(const char* base, std::size_t bytes, int work, const float* tables) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  const __m512 one = _mm512_set1_ps(1.0f);
  for (std::size_t pass = 0; pass < bytes; pass += kPass)
    for (std::size_t at = 0; at < kStreamBytes; at += 64)
      for (std::size_t s = 0; s < kStreams; ++s) {
        const char* line = base + pass + s * kStreamBytes + at;
        if (Prefetch) __builtin_prefetch(line + kPass, 0, 2);
        const __m512i q = _mm512_load_si512(line);
        const float* t = tables + (at / 64) % (kTableBytes / 512) * 128;
        for (int w = 0; w < work; ++w, t += 64) {
          acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 0), _mm512_load_ps(t)), one, acc0);
          acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), _mm512_load_ps(t + 16)), one, acc1);
          acc2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 8), _mm512_load_ps(t + 32)), one, acc2);
          acc3 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 12), _mm512_load_ps(t + 48)), one, acc3);
        }
      }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

}  // namespace

int main() {
  const std::size_t cold = std::size_t(128) << 20, hot = 512 << 10, total = 3 * cold + (4 << 20);
  char* buf = static_cast<char*>(std::aligned_alloc(2 << 20, total));
  madvise(buf, total, std::getenv("ONEBIT_4K_PAGES") ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
  std::memset(buf, 1, total);
  float* tables = static_cast<float*>(std::aligned_alloc(64, kTableBytes + 4096));
  std::memset(tables, 0, kTableBytes + 4096);
  volatile float sink = 0;
  std::printf("pages: %s\n", std::getenv("ONEBIT_4K_PAGES") ? "4 KB" : "2 MB");
  for (int work : {0, 1, 2, 3}) {
    double best[3] = {1e9, 1e9, 1e9};
    for (int round = 0; round < 5; ++round) {
      const char* region = buf + (round % 2) * cold;  // not the region of the round before
      double t0 = now();
      for (std::size_t i = 0; i < cold / hot; ++i) sink = sink + run<false>(buf + total - hot, hot, work, tables);
      double t1 = now();
      sink = sink + run<false>(region, cold, work, tables);
      double t2 = now();
      sink = sink + run<true>(region + cold, cold, work, tables);
      double t3 = now();
      best[0] = std::min(best[0], t1 - t0), best[1] = std::min(best[1], t2 - t1), best[2] = std::min(best[2], t3 - t2);
    }
    const double gb = cold / 1e9;
    std::printf("work %d: hot %.1f GB/s  cold %.1f GB/s  cold+prefetch %.1f GB/s\n", work, gb / best[0], gb / best[1],
                gb / best[2]);
  }
}

// read_memory (onebit.h): the streaming-read loop the decode benchmark times
// to measure the machine's memory read bandwidth, with the kernels' threads.
#include <algorithm>
#include <cstring>

#include "onebit/onebit.h"
#include "thread_pool.h"

namespace onebit {
namespace {

// Eight independent accumulators, each one register of the vector type V: the
// loop is bound by the loads, not by a chain of xors. V is 16 bytes (SSE2 on
// x86-64, NEON on AArch64: a register each, which 32-byte generic vectors were
// not: GCC kept them on the stack and the loop ran at ~28 GB/s even from L1)
// or, where the CPU has AVX2, 32 bytes, so that a cache-resident buffer is
// read at the rate the kernels' wide loads get (the benchmark's cache bandwidth).
template <class V>
__attribute__((always_inline)) inline std::uint64_t xor_range(const unsigned char* data, std::size_t begin,
                                                              std::size_t end) {
  constexpr std::size_t kStep = 8 * sizeof(V);
  V acc[8] = {};
  std::size_t i = begin;
  for (; i + kStep <= end; i += kStep)
    for (int j = 0; j < 8; ++j) {
      V v;
      std::memcpy(&v, data + i + j * sizeof(V), sizeof v);
      acc[j] ^= v;
    }
  std::uint64_t sum = 0;
  for (; i < end; ++i) sum ^= data[i];
  for (const V& a : acc)
    for (std::size_t k = 0; k < sizeof(V) / 8; ++k) sum ^= a[k];
  return sum;
}

typedef std::uint64_t Lanes16 __attribute__((vector_size(16)));

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
typedef std::uint64_t Lanes32 __attribute__((vector_size(32)));
__attribute__((target("avx2"))) std::uint64_t xor_range_avx2(const unsigned char* data, std::size_t begin,
                                                             std::size_t end) {
  return xor_range<Lanes32>(data, begin, end);
}
bool has_avx2() { return __builtin_cpu_supports("avx2"); }
#else
std::uint64_t xor_range_avx2(const unsigned char* data, std::size_t begin, std::size_t end) {
  return xor_range<Lanes16>(data, begin, end);
}
bool has_avx2() { return false; }
#endif

struct ReadJob {
  const unsigned char* data;
  std::size_t bytes, per_task;
  bool wide;  // 32-byte loads (AVX2)
  std::uint64_t sums[64];
};

void read_task(void* ctx, std::int64_t t) {
  auto& job = *static_cast<ReadJob*>(ctx);
  const std::size_t begin = static_cast<std::size_t>(t) * job.per_task;
  const std::size_t end = std::min(job.bytes, begin + job.per_task);
  job.sums[t] = job.wide ? xor_range_avx2(job.data, begin, end) : xor_range<Lanes16>(job.data, begin, end);
}

}  // namespace

std::uint64_t read_memory(const void* data, std::size_t bytes) {
  ReadJob job;
  job.data = static_cast<const unsigned char*>(data);
  job.bytes = bytes;
  static const bool wide = has_avx2();
  job.wide = wide;
  const std::int64_t tasks = std::min<std::int64_t>(64, cpu::pool_threads());
  // Whole 4 KiB pages per task, so no two threads share a line or a page.
  const std::size_t share = (bytes + static_cast<std::size_t>(tasks) - 1) / static_cast<std::size_t>(tasks);
  job.per_task = std::max<std::size_t>(1, (share + 4095) / 4096) * 4096;
  const auto used = static_cast<std::int64_t>((bytes + job.per_task - 1) / job.per_task);
  cpu::parallel_for(used, read_task, &job);
  std::uint64_t sum = 0;
  for (std::int64_t t = 0; t < used; ++t) sum ^= job.sums[t];
  // Every byte position folded into one: the xor of all the bytes, however
  // the range was split.
  sum ^= sum >> 32;
  sum ^= sum >> 16;
  sum ^= sum >> 8;
  return sum & 0xff;
}

}  // namespace onebit

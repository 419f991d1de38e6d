// read_memory (onebit.h): the streaming-read loop the decode benchmark times
// to measure the machine's memory read bandwidth, with the kernels' threads.
#include <algorithm>
#include <cstring>

#include "onebit/onebit.h"
#include "thread_pool.h"

namespace onebit {
namespace {

// Four independent 32-byte accumulators: the loop is bound by the loads, not
// by a chain of xors. Generic vector types, so the baseline build (SSE2 on
// x86-64, NEON on AArch64) loads 16 bytes at a time, far above one core's
// share of DRAM bandwidth.
typedef std::uint64_t Lanes __attribute__((vector_size(32)));
constexpr std::size_t kStep = 4 * sizeof(Lanes);

struct ReadJob {
  const unsigned char* data;
  std::size_t bytes, per_task;
  std::uint64_t sums[64];
};

void read_task(void* ctx, std::int64_t t) {
  auto& job = *static_cast<ReadJob*>(ctx);
  const std::size_t begin = static_cast<std::size_t>(t) * job.per_task;
  const std::size_t end = std::min(job.bytes, begin + job.per_task);
  Lanes acc[4] = {};
  std::size_t i = begin;
  for (; i + kStep <= end; i += kStep)
    for (int j = 0; j < 4; ++j) {
      Lanes v;
      std::memcpy(&v, job.data + i + j * sizeof(Lanes), sizeof v);
      acc[j] ^= v;
    }
  std::uint64_t sum = 0;
  for (; i < end; ++i) sum ^= job.data[i];
  for (const Lanes& a : acc)
    for (int k = 0; k < 4; ++k) sum ^= a[k];
  job.sums[t] = sum;
}

}  // namespace

std::uint64_t read_memory(const void* data, std::size_t bytes) {
  ReadJob job;
  job.data = static_cast<const unsigned char*>(data);
  job.bytes = bytes;
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

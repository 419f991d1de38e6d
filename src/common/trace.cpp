#include "trace.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include "onebit/onebit.h"

namespace onebit {

namespace {
std::atomic<int> active{0};
std::mutex mutex;
std::vector<TraceEntry> entries;  // since the outermost trace_start
}  // namespace

void trace_record(const char* backend, const std::string& kernel, const std::uint32_t grid[3],
                  const std::uint32_t threadgroup[3]) {
  if (active.load(std::memory_order_relaxed) == 0) return;
  TraceEntry e{backend, kernel, {grid[0], grid[1], grid[2]},
               {threadgroup[0], threadgroup[1], threadgroup[2]}};
  std::lock_guard<std::mutex> lock(mutex);
  if (active.load() > 0) entries.push_back(std::move(e));
}

std::size_t trace_start() {
  std::lock_guard<std::mutex> lock(mutex);
  if (active++ == 0) entries.clear();
  return entries.size();
}

std::vector<TraceEntry> trace_stop(std::size_t token) {
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<TraceEntry> mine(entries.begin() + std::min(token, entries.size()), entries.end());
  if (--active == 0) entries.clear();
  return mine;
}

}  // namespace onebit

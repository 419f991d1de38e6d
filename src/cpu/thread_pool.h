// A persistent pool of worker threads for the CPU kernels (std::thread only,
// no OpenMP, so the core links the same way with every compiler).
#pragma once

#include <cstdint>

namespace onebit {
namespace cpu {

// A task body. A plain function pointer (not std::function) keeps
// ISA-specific code out of this generic translation unit (see isa.h).
using TaskFn = void (*)(void* ctx, std::int64_t task);

// Runs fn(ctx, t) for every t in [0, n_tasks) and returns when all
// are done. The calling thread works too. Calls from several threads are
// serialised: the pool runs one job at a time. Must not be called from
// inside a task.
void parallel_for(std::int64_t n_tasks, TaskFn fn, void* ctx);

// Number of threads a job may use (the caller included).
int pool_threads();

// While one is alive (and `serial` is true), parallel_for on this thread runs
// its tasks inline: for calls too small to pay for waking the workers.
class SerialScope {
 public:
  explicit SerialScope(bool serial);
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  bool previous_;
};

}  // namespace cpu
}  // namespace onebit

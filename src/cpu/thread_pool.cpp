#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

#include "onebit/onebit.h"

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>  // _mm_pause (SSE2: baseline on x86-64)
#endif

namespace onebit {
namespace cpu {

namespace {

// A hint to the core that this thread is spin-waiting.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls a worker makes before it sleeps (tens of microseconds): calls that
// follow each other closely, like a model's layers, then start without a
// sleep / wake-up round trip through the kernel.
constexpr int kSpins = 2000;

class Pool {
 public:
  explicit Pool(int threads = default_threads()) : threads_(threads) { start(); }
  ~Pool() { stop(); }

  int threads() {
    std::lock_guard<std::mutex> job(job_mutex_);
    return threads_;
  }

  // On failure (the system refuses a thread) the pool is back at its old
  // size before the error propagates, so get_num_threads() tells the truth.
  // The old size ran a moment ago, so restarting it is expected to succeed.
  void resize(int n) {
    std::lock_guard<std::mutex> job(job_mutex_);  // waits for a running job
    if (n == threads_) return;
    const int old = threads_;
    stop();
    threads_ = n;
    try {
      start();
    } catch (const std::exception& e) {  // std::system_error (EAGAIN), or bad_alloc
      stop();
      threads_ = old;
      start();
      throw std::runtime_error("[set_num_threads] could not start " + std::to_string(n) +
                               " threads (" + e.what() + "); still using " + std::to_string(old));
    }
  }

  // Fork handlers (see pool() below): the forking thread holds job_mutex_
  // across fork(), so no job is half-run when the address space is copied.
  // Returns the thread count, for the child's new pool.
  int before_fork() {
    job_mutex_.lock();
    return threads_;
  }
  void after_fork_in_parent() { job_mutex_.unlock(); }

  void run(std::int64_t n_tasks, TaskFn fn, void* ctx) {
    if (n_tasks <= 0) return;
    std::lock_guard<std::mutex> job(job_mutex_);
    // Nothing to share: run inline without waking anyone.
    if (n_tasks == 1 || threads_ == 1) {
      for (std::int64_t t = 0; t < n_tasks; ++t) fn(ctx, t);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = fn;
      ctx_ = ctx;
      n_tasks_ = n_tasks;
      next_.store(0);
      busy_.store(static_cast<int>(workers_.size()));
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work();
    // Poll before sleeping, as the workers do: the others' last tasks usually
    // end within microseconds, while a sleep and its wake-up cost ~50 us.
    for (int i = 0; i < kSpins && busy_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // The cores this process may run on (a container or taskset may allow
  // fewer than the machine has).
  static int default_threads() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
  }

  // Claims tasks until none is left; the shared counter balances uneven tasks.
  void work() {
    for (;;) {
      const std::int64_t t = next_.fetch_add(1);
      if (t >= n_tasks_) return;
      try {
        fn_(ctx_, t);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  // `seen` starts at the generation current when the worker was created, so
  // a worker started by resize() never runs a job that ended before it.
  void loop(std::uint64_t seen) {
    for (;;) {
      for (int i = 0; i < kSpins && generation_.load(std::memory_order_acquire) == seen; ++i) cpu_relax();
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_.load();
      }
      work();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }

  void start() {  // with no job running; throws if a thread is refused
    quit_ = false;
    // The calling thread is the first of threads_.
    for (int i = 1; i < threads_; ++i) workers_.emplace_back(&Pool::loop, this, generation_.load());
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex job_mutex_;  // one job (or resize) at a time
  std::mutex mutex_;      // guards the job description below
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  int threads_;
  bool quit_ = false;
  std::atomic<std::uint64_t> generation_{0};  // written under mutex_; also polled
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::int64_t n_tasks_ = 0;
  std::atomic<std::int64_t> next_{0};
  std::atomic<int> busy_{0};  // written under mutex_; also polled
  std::exception_ptr error_;
};

// The pool is created on first use, and again in a forked child: fork()
// copies only the calling thread, so the child's copy of the parent's pool has
// workers that do not exist, and its first job would wait for them forever.
// The child abandons that copy (leaked on purpose: destroying it would join
// threads that are not there) and builds its own, of the same size, on its
// next call.
std::mutex g_pool_mutex;  // guards g_pool and g_threads; held across fork()
Pool* g_pool = nullptr;
int g_threads = 0;  // the size of the next pool to create; 0: the default

void before_fork() {
  g_pool_mutex.lock();
  if (g_pool) g_threads = g_pool->before_fork();
}

void after_fork_in_parent() {
  if (g_pool) g_pool->after_fork_in_parent();
  g_pool_mutex.unlock();
}

void after_fork_in_child() {
  g_pool = nullptr;
  g_pool_mutex.unlock();  // the child's one thread is the one that locked it
}

Pool& pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) {
    static const bool registered = pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child) == 0;
    (void)registered;  // without handlers a forked child could hang; nothing better to do here
    g_pool = g_threads > 0 ? new Pool(g_threads) : new Pool();
  }
  return *g_pool;
}

thread_local bool serial_here = false;  // a SerialScope is alive on this thread

}  // namespace

SerialScope::SerialScope(bool serial) : previous_(serial_here) { serial_here = previous_ || serial; }
SerialScope::~SerialScope() { serial_here = previous_; }

void parallel_for(std::int64_t n_tasks, TaskFn fn, void* ctx) {
  if (serial_here) {
    for (std::int64_t t = 0; t < n_tasks; ++t) fn(ctx, t);
    return;
  }
  pool().run(n_tasks, fn, ctx);
}

int pool_threads() { return pool().threads(); }

}  // namespace cpu

void set_num_threads(int n) {
  if (n < 1)
    throw ValueError("[set_num_threads] n must be >= 1, got " + std::to_string(n));
  cpu::pool().resize(n);
}

int get_num_threads() { return cpu::pool().threads(); }

}  // namespace onebit

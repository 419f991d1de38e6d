// Lockstep execution of emulated threadgroups: one fiber per GPU thread,
// collectives as synchronisation points, threadgroups spread over CPU threads.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "context_switch.h"
#include "kernel_abi.h"
#include "lockstep.h"

namespace onebit {
namespace metal {
namespace emu {

namespace {

// Deep enough for kernels' register arrays; pages are only committed when touched.
constexpr std::size_t kStackBytes = 256 * 1024;

enum class State : std::uint8_t { runnable, waiting, finished };

struct Fiber {
  FiberContext context;
  State state = State::runnable;
  Scope scope = Scope::simdgroup;
  Site site{nullptr, nullptr, 0};
  unsigned parity = 0;     // which exchange buffer this lane's next simd collective uses
  unsigned tg_parity = 0;  // the same for threadgroup-wide collectives with data
  std::exception_ptr error;
};

// Per simdgroup: two exchange buffers, used alternately, so a lane that runs
// ahead into its next collective never overwrites deposits that slower lanes
// of the previous one still read.
struct SimdExchange {
  unsigned char deposits[2][kSimdWidth * kMaxDeposit];
  unsigned char result[2][kMaxDeposit];
  std::uint32_t live[2] = {0, 0};
};

class ThreadgroupRunner;
thread_local ThreadgroupRunner* tls_runner = nullptr;

// Runs the threadgroups given to one CPU thread. Fiber stacks, exchange
// buffers and threadgroup memory are allocated once and reused.
class ThreadgroupRunner {
 public:
  explicit ThreadgroupRunner(const Launch& l) : launch_(l) {
    const auto& t = l.threads;
    threads_ = static_cast<int>(t[0] * t[1] * t[2]);
    fibers_.resize(threads_);
    exchanges_.resize((threads_ + kSimdWidth - 1) / kSimdWidth);
    for (auto& d : tg_deposits_) d.resize(static_cast<std::size_t>(threads_) * kMaxDeposit);
    for (auto& l : tg_live_) l.resize(threads_);
    const long page = sysconf(_SC_PAGESIZE);
    stacks_bytes_ = kStackBytes * threads_;
    void* m = mmap(nullptr, stacks_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("[metal-emulated] cannot map fiber stacks");
    stacks_ = static_cast<unsigned char*>(m);
    // A guard page at the bottom of each stack turns an overflow into a
    // crash at the faulting kernel instead of silent corruption.
    for (int i = 0; i < threads_; ++i) mprotect(stacks_ + i * kStackBytes, page, PROT_NONE);
    for (std::int64_t bytes : l.threadgroup_memory) tg_memory_.emplace_back(bytes);
    slots_ = l.buffers;
    for (auto& mem : tg_memory_) slots_.push_back(mem.data());
  }
  ~ThreadgroupRunner() { munmap(stacks_, stacks_bytes_); }

  void run(std::uint32_t x, std::uint32_t y, std::uint32_t z) {
    tgid_ = {x, y, z};
    // Threadgroup memory starts as garbage on a GPU; all-ones bytes are NaN
    // as float/half/bfloat, so a kernel that reads before writing shows it.
    for (auto& mem : tg_memory_) std::fill(mem.begin(), mem.end(), static_cast<unsigned char>(0xff));
    for (auto& e : exchanges_) e.live[0] = e.live[1] = 0;
    tls_runner = this;
    for (int i = 0; i < threads_; ++i) start_fiber(i);
    schedule();
    tls_runner = nullptr;
  }

  Exchange arrive(Scope scope, const Site& site, const void* arg, std::size_t size) {
    Fiber& f = fibers_[current_];
    const int lane = current_ % kSimdWidth;
    SimdExchange& ex = exchanges_[current_ / kSimdWidth];
    const unsigned parity = f.parity;
    if (scope == Scope::simdgroup) {
      if (size > kMaxDeposit) throw std::logic_error("[metal-emulated] collective argument too large");
      if (size) std::memcpy(ex.deposits[parity] + lane * kMaxDeposit, arg, size);
      f.parity ^= 1u;
    } else {
      f.tg_parity ^= 1u;  // barriers take a turn too, so parities stay uniform
    }
    f.state = State::waiting;
    f.scope = scope;
    f.site = site;
    switch_fiber(f.context, scheduler_context_);
    return {ex.deposits[parity], ex.live[parity], lane};
  }

  GroupExchange arrive_threadgroup(const Site& site, const void* arg, std::size_t size) {
    if (size > kMaxDeposit) throw std::logic_error("[metal-emulated] collective argument too large");
    Fiber& f = fibers_[current_];
    const unsigned parity = f.tg_parity;
    std::memcpy(tg_deposits_[parity].data() + static_cast<std::size_t>(current_) * kMaxDeposit, arg,
                size);
    f.tg_parity ^= 1u;
    f.state = State::waiting;
    f.scope = Scope::threadgroup;
    f.site = site;
    switch_fiber(f.context, scheduler_context_);
    return {tg_deposits_[parity].data(), tg_live_[parity].data(), threads_, current_};
  }

  int thread_index() const { return current_; }
  int threads() const { return threads_; }
  std::uint32_t layout_seed() const {
    // A cheap hash of the threadgroup position.
    return (tgid_[0] * 0x9e3779b1u) ^ (tgid_[1] * 0x85ebca77u) ^ (tgid_[2] * 0xc2b2ae3du);
  }

  void* shared_result() {
    Fiber& f = fibers_[current_];
    // The parity flipped on arrival: the completed collective used the other one.
    return exchanges_[current_ / kSimdWidth].result[f.parity ^ 1u];
  }

 private:
  static void fiber_main() {
    ThreadgroupRunner* r = tls_runner;
    const int i = r->current_;
    try {
      const auto& t = r->launch_.threads;
      const ::metal::uint u = static_cast<::metal::uint>(i);
      ThreadIds ids;
      ids.tgid = ::metal::uint3(r->tgid_[0], r->tgid_[1], r->tgid_[2]);
      ids.lid = ::metal::uint3(u % t[0], (u / t[0]) % t[1], u / (t[0] * t[1]));
      ids.simd_gid = u / kSimdWidth;
      ids.simd_lid = u % kSimdWidth;
      r->launch_.kernel->invoke(r->slots_.data(), ids);
    } catch (...) {
      r->fibers_[i].error = std::current_exception();
    }
    r->fibers_[i].state = State::finished;
    switch_fiber(r->fibers_[i].context, r->scheduler_context_);  // never resumed
    __builtin_unreachable();
  }

  void start_fiber(int i) {
    Fiber& f = fibers_[i];
    f = Fiber{};
    const long page = sysconf(_SC_PAGESIZE);
    prepare_fiber(f.context, stacks_ + i * kStackBytes + page, kStackBytes - page,
                  &ThreadgroupRunner::fiber_main);
  }

  [[noreturn]] void fail(const std::string& what) {
    std::ostringstream s;
    s << "[metal-emulated] " << launch_.kernel->name << " threadgroup (" << tgid_[0] << ", "
      << tgid_[1] << ", " << tgid_[2] << "): " << what;
    throw std::runtime_error(s.str());
  }

  static std::string where(const Fiber& f) {
    std::ostringstream s;
    if (f.state == State::finished) return "returned";
    s << f.site.op << " at " << f.site.file << ":" << f.site.line;
    return s.str();
  }

  static bool same_site(const Fiber& a, const Fiber& b) {
    return a.scope == b.scope && a.site.line == b.site.line &&
           std::strcmp(a.site.op, b.site.op) == 0 && std::strcmp(a.site.file, b.site.file) == 0;
  }

  // Round-robin until every fiber finishes; between passes, release the
  // collectives that every live participant has reached.
  void schedule() {
    for (;;) {
      for (int i = 0; i < threads_; ++i) {
        if (fibers_[i].state != State::runnable) continue;
        current_ = i;
        switch_fiber(scheduler_context_, fibers_[i].context);
        if (fibers_[i].error) std::rethrow_exception(fibers_[i].error);
      }
      if (!release()) break;
    }
  }

  // Returns false when all fibers have finished.
  bool release() {
    int live = 0, at_barrier = 0, first_live = -1;
    for (int i = 0; i < threads_; ++i) {
      if (fibers_[i].state == State::finished) continue;
      ++live;
      if (first_live < 0) first_live = i;
      if (fibers_[i].scope == Scope::threadgroup) ++at_barrier;
    }
    if (live == 0) return false;
    if (at_barrier == live) {  // a threadgroup barrier everyone reached
      for (int i = 0; i < threads_; ++i) {
        Fiber& f = fibers_[i];
        if (f.state == State::finished) continue;
        if (!same_site(f, fibers_[first_live]))
          fail("threads reached different barriers: thread " + std::to_string(first_live) +
               " at " + where(fibers_[first_live]) + ", thread " + std::to_string(i) + " at " +
               where(f));
        f.state = State::runnable;
      }
      // Who took part, for threadgroup collectives with data (all threads
      // used the same parity, having made the same collectives so far).
      auto& live_set = tg_live_[fibers_[first_live].tg_parity ^ 1u];
      for (int i = 0; i < threads_; ++i) live_set[i] = fibers_[i].state != State::finished;
      return true;
    }
    bool released = false;
    for (std::size_t g = 0; g < exchanges_.size(); ++g) {
      const int begin = static_cast<int>(g) * kSimdWidth;
      const int end = std::min(threads_, begin + kSimdWidth);
      int lead = -1;
      bool ready = true;
      std::uint32_t mask = 0;
      for (int i = begin; i < end && ready; ++i) {
        const Fiber& f = fibers_[i];
        if (f.state == State::finished) continue;
        if (f.scope != Scope::simdgroup) ready = false;
        mask |= 1u << (i - begin);
        if (lead < 0) lead = i;
      }
      if (!ready || lead < 0) continue;
      for (int i = begin; i < end; ++i) {
        Fiber& f = fibers_[i];
        if (f.state == State::finished) continue;
        if (!same_site(f, fibers_[lead]))
          fail("lanes of simdgroup " + std::to_string(g) + " diverged: lane " +
               std::to_string(lead - begin) + " at " + where(fibers_[lead]) + ", lane " +
               std::to_string(i - begin) + " at " + where(f));
        f.state = State::runnable;
      }
      // All lanes of the group used the same parity for this collective.
      exchanges_[g].live[fibers_[lead].parity ^ 1u] = mask;
      released = true;
    }
    if (!released) {
      // Name each run of consecutive threads waiting at the same place.
      std::ostringstream s;
      s << "threads wait forever (divergent collectives):";
      for (int i = 0; i < threads_;) {
        int j = i + 1;
        while (j < threads_ && where(fibers_[j]) == where(fibers_[i])) ++j;
        s << " [threads " << i << "-" << j - 1 << ": " << where(fibers_[i]) << "]";
        i = j;
      }
      fail(s.str());
    }
    return true;
  }

  const Launch& launch_;
  int threads_ = 0;
  std::vector<Fiber> fibers_;
  std::vector<SimdExchange> exchanges_;
  std::vector<unsigned char> tg_deposits_[2];
  std::vector<unsigned char> tg_live_[2];
  std::vector<std::vector<unsigned char>> tg_memory_;
  std::vector<void*> slots_;
  unsigned char* stacks_ = nullptr;
  std::size_t stacks_bytes_ = 0;
  FiberContext scheduler_context_;
  int current_ = 0;
  std::array<std::uint32_t, 3> tgid_{0, 0, 0};
};

std::map<std::string, KernelInfo>& registry() {
  static std::map<std::string, KernelInfo> kernels;
  return kernels;
}

}  // namespace

Exchange arrive(Scope scope, const Site& site, const void* arg, std::size_t size) {
  if (!tls_runner) throw std::logic_error("[metal-emulated] collective called outside a kernel");
  return tls_runner->arrive(scope, site, arg, size);
}

void* shared_result() { return tls_runner->shared_result(); }

GroupExchange arrive_threadgroup(const Site& site, const void* arg, std::size_t size) {
  if (!tls_runner) throw std::logic_error("[metal-emulated] collective called outside a kernel");
  return tls_runner->arrive_threadgroup(site, arg, size);
}

int thread_index() { return tls_runner->thread_index(); }
int threads_per_threadgroup() { return tls_runner->threads(); }
std::uint32_t layout_seed() { return tls_runner->layout_seed(); }

void register_kernel(const KernelInfo& info) { registry()[info.name] = info; }

const KernelInfo* find_kernel(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> kernel_names() {
  std::vector<std::string> names;
  for (const auto& kv : registry()) names.push_back(kv.first);
  return names;
}

void launch(const Launch& l) {
  if (!l.kernel) throw std::invalid_argument("[metal-emulated] launch without a kernel");
  const int slots = static_cast<int>(l.buffers.size() + l.threadgroup_memory.size());
  if (slots != l.kernel->num_slots)
    throw std::invalid_argument("[metal-emulated] " + std::string(l.kernel->name) + " takes " +
                                std::to_string(l.kernel->num_slots) + " buffers/threadgroup "
                                "allocations, the dispatch binds " + std::to_string(slots));
  const std::uint64_t threads = std::uint64_t(l.threads[0]) * l.threads[1] * l.threads[2];
  if (threads == 0 || threads > 1024)
    throw std::invalid_argument("[metal-emulated] threads per threadgroup must be 1..1024");
  const std::uint64_t groups = std::uint64_t(l.threadgroups[0]) * l.threadgroups[1] * l.threadgroups[2];
  if (groups == 0) return;

  std::atomic<std::uint64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    try {
      ThreadgroupRunner runner(l);
      for (std::uint64_t g; (g = next.fetch_add(1)) < groups;) {
        const std::uint32_t x = g % l.threadgroups[0];
        const std::uint32_t y = (g / l.threadgroups[0]) % l.threadgroups[1];
        const std::uint32_t z = g / (std::uint64_t(l.threadgroups[0]) * l.threadgroups[1]);
        runner.run(x, y, z);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = groups;  // stop the other workers early
    }
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned workers = static_cast<unsigned>(std::min<std::uint64_t>(hw, groups));
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < workers; ++w) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace emu
}  // namespace metal
}  // namespace onebit

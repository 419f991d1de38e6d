// Lockstep execution of emulated threadgroups: one fiber per GPU thread,
// collectives as synchronisation points, threadgroups spread over CPU threads.
#include <sys/mman.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
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
  std::uint32_t salt[2] = {0, 0};
  bool claimed[2] = {false, false};  // first_in_simdgroup() answered
  std::uint32_t calls = 0;  // collectives completed in this threadgroup run
};

// A small deterministic generator for seeded shuffles and fills.
struct XorShift {
  std::uint32_t state;
  explicit XorShift(std::uint32_t s) : state(s ? s : 0x9e3779b9u) {}
  std::uint32_t next() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  }
};

// Float32 denormals flushed to zero (FTZ) and read as zero (DAZ) in the
// calling CPU thread for the scope's lifetime, as a GPU may do.
class FlushSubnormals {
 public:
  explicit FlushSubnormals(bool on) : on_(on) {
    if (!on_) return;
#if defined(__x86_64__) || defined(__i386__)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#elif defined(__aarch64__)
    std::uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    saved_ = fpcr;
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ull << 24)));  // FZ
#else
#error "the emulator flushes subnormals on x86 and aarch64 only"
#endif
  }
  ~FlushSubnormals() {
    if (!on_) return;
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(static_cast<unsigned>(saved_));
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"(saved_));
#endif
  }
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  bool on_;
  std::uint64_t saved_ = 0;
};

class ThreadgroupRunner;
thread_local ThreadgroupRunner* tls_runner = nullptr;

// Runs the threadgroups given to one CPU thread. Fiber stacks, exchange
// buffers and threadgroup memory are allocated once and reused.
class ThreadgroupRunner {
 public:
  ThreadgroupRunner(const Launch& l, const Adversary& adversary) : launch_(l), adversary_(adversary) {
    const auto& t = l.threads;
    threads_ = static_cast<int>(t[0] * t[1] * t[2]);
    fibers_.resize(threads_);
    order_.resize(threads_);
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
    run_salt_ = mix(adversary_.seed, (x * 0x9e3779b1u) ^ (y * 0x85ebca77u) ^ (z * 0xc2b2ae3du));
    XorShift random(run_salt_);
    // Threadgroup memory starts as garbage on a GPU: all-ones bytes (NaN as
    // float/half/bfloat) or random bytes, so a kernel that reads before
    // writing shows it.
    for (auto& mem : tg_memory_) {
      if (adversary_.garbage_fill)
        for (auto& b : mem) b = static_cast<unsigned char>(random.next() >> 24);
      else
        std::fill(mem.begin(), mem.end(), static_cast<unsigned char>(0xff));
    }
    for (auto& e : exchanges_) e.live[0] = e.live[1] = e.calls = 0;
    tg_calls_ = 0;
    // The order fibers run in between collectives: threads of a threadgroup
    // are not ordered on a GPU, so a kernel that reads threadgroup memory
    // another thread writes without a barrier in between sees either value.
    for (int i = 0; i < threads_; ++i) order_[i] = i;
    for (int i = threads_ - 1; i > 0; --i) std::swap(order_[i], order_[random.next() % (i + 1)]);
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
    return {ex.deposits[parity], ex.live[parity], lane, ex.salt[parity]};
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
    return {tg_deposits_[parity].data(), tg_live_[parity].data(), threads_, current_, tg_salt_[parity]};
  }

  int thread_index() const { return current_; }
  int threads() const { return threads_; }
  std::uint32_t layout_seed() const { return run_salt_; }
  const Adversary& adversary() const { return adversary_; }

  bool first_in_simdgroup() {
    bool& claimed = exchanges_[current_ / kSimdWidth].claimed[fibers_[current_].parity ^ 1u];
    return !std::exchange(claimed, true);
  }
  bool first_in_threadgroup() { return !std::exchange(tg_claimed_[fibers_[current_].tg_parity ^ 1u], true); }

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
      for (int i : order_) {
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
      const unsigned parity = fibers_[first_live].tg_parity ^ 1u;
      auto& live_set = tg_live_[parity];
      for (int i = 0; i < threads_; ++i) live_set[i] = fibers_[i].state != State::finished;
      tg_salt_[parity] = mix(run_salt_, 0x80000000u ^ tg_calls_++);
      tg_claimed_[parity] = false;
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
      const unsigned parity = fibers_[lead].parity ^ 1u;
      exchanges_[g].live[parity] = mask;
      exchanges_[g].claimed[parity] = false;
      exchanges_[g].salt[parity] = mix(run_salt_, (static_cast<std::uint32_t>(g) << 20) ^ exchanges_[g].calls++);
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
  const Adversary& adversary_;
  std::uint32_t run_salt_ = 0;  // this threadgroup run's seed
  std::uint32_t tg_calls_ = 0;  // threadgroup collectives completed in this run
  std::uint32_t tg_salt_[2] = {0, 0};
  bool tg_claimed_[2] = {false, false};
  std::vector<int> order_;      // the fibers' scheduling order
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
bool first_in_simdgroup() { return tls_runner->first_in_simdgroup(); }
bool first_in_threadgroup() { return tls_runner->first_in_threadgroup(); }

GroupExchange arrive_threadgroup(const Site& site, const void* arg, std::size_t size) {
  if (!tls_runner) throw std::logic_error("[metal-emulated] collective called outside a kernel");
  return tls_runner->arrive_threadgroup(site, arg, size);
}

int thread_index() { return tls_runner->thread_index(); }
int threads_per_threadgroup() { return tls_runner->threads(); }
std::uint32_t layout_seed() { return tls_runner->layout_seed(); }
const Adversary& adversary() { return tls_runner->adversary(); }

std::uint32_t mix(std::uint32_t a, std::uint32_t b) {
  std::uint32_t h = a * 0x9e3779b1u ^ (b + 0x7f4a7c15u + (a << 6) + (a >> 2));
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  return h ^ (h >> 16);
}

bool reduction_order(std::uint32_t salt, int n, int* order) {
  const int start = n ? static_cast<int>(salt % static_cast<std::uint32_t>(n)) : 0;
  const int kind = static_cast<int>((salt >> 8) % 3u);  // 0 forward, 1 backward, 2 tree
  for (int i = 0; i < n; ++i) order[i] = kind == 1 ? (start - i + n) % n : (start + i) % n;
  return kind == 2;
}

Adversary Adversary::from_seed(std::uint32_t seed) {
  Adversary a;
  a.seed = seed;
  a.flush_subnormals = seed % 2 == 0;
  a.multiply_accumulates = (seed & 2u) != 0;
  a.garbage_fill = seed % 2 == 1;
  a.extra_capacity = static_cast<int>(seed % 3);
  return a;
}

Adversary Adversary::from_env() {
  const char* v = std::getenv("PYONEBIT_EMU_SEED");
  if (v == nullptr || *v == '\0') return from_seed(1);
  char* end = nullptr;
  const unsigned long seed = std::strtoul(v, &end, 10);
  if (*end != '\0' || seed > 0xffffffffu || v[0] == '-')
    throw std::invalid_argument(std::string("[metal-emulated] PYONEBIT_EMU_SEED='") + v +
                                "' is not an unsigned 32-bit integer");
  return from_seed(static_cast<std::uint32_t>(seed));
}

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

  const Adversary adversary = Adversary::from_env();
  // Threadgroups run in a seeded order: g -> (g * stride + offset) mod groups
  // with stride coprime to groups, a permutation.
  std::uint64_t stride = (mix(adversary.seed, 1) % groups) | 1u, offset = mix(adversary.seed, 2) % groups;
  while (std::gcd(stride, groups) != 1) ++stride;
  std::atomic<std::uint64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    try {
      FlushSubnormals flush(adversary.flush_subnormals);
      ThreadgroupRunner runner(l, adversary);
      for (std::uint64_t i; (i = next.fetch_add(1)) < groups;) {
        const std::uint64_t g =
            static_cast<std::uint64_t>((static_cast<unsigned __int128>(i) * stride + offset) % groups);
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

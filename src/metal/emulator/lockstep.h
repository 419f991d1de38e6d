// The emulator's execution model, as seen by one emulated GPU thread.
//
// Every thread of a threadgroup runs as a fiber on one CPU thread. A thread
// runs freely until it reaches a collective (a simdgroup operation or a
// threadgroup barrier); there it deposits its argument and waits. When every
// live thread of the scope has arrived at the *same* collective call site,
// all of them resume and can read each other's deposits. A mismatch (lanes at
// different collectives, or a lane that never arrives) is an error: on a GPU
// it is undefined behaviour or a hang, and this is the one place to catch it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace onebit {
namespace metal {
namespace emu {

constexpr int kSimdWidth = 32;
// Largest argument one lane can deposit at a collective (an 8x8 float
// simdgroup_matrix tile, the largest payload the shim exchanges).
constexpr std::size_t kMaxDeposit = 256;

enum class Scope : std::uint8_t { simdgroup, threadgroup };

// Where a collective was called from; lanes must agree on all three.
struct Site {
  const char* op;
  const char* file;
  int line;
};

// What a lane sees after a simdgroup collective completes.
struct Exchange {
  const unsigned char* deposits;  // kSimdWidth slots of kMaxDeposit bytes
  std::uint32_t live;             // bit i: lane i took part
  int lane;                       // this lane

  const void* of(int l) const { return deposits + static_cast<std::size_t>(l) * kMaxDeposit; }
  bool is_live(int l) const { return (live >> l) & 1u; }
  // The lowest live lane: the one that performs a side effect once for all.
  int leader() const { return __builtin_ctz(live); }
};

// Blocks the calling emulated thread until the collective completes.
// For Scope::threadgroup (a barrier), arg is null and the Exchange is empty.
Exchange arrive(Scope scope, const Site& site, const void* arg, std::size_t size);

// What a thread sees after a threadgroup-wide collective completes.
struct GroupExchange {
  const unsigned char* deposits;  // one kMaxDeposit slot per thread of the threadgroup
  const unsigned char* live;      // live[t] != 0: thread t took part
  int threads;                    // threads in the threadgroup
  int index;                      // this thread

  const void* of(int t) const { return deposits + static_cast<std::size_t>(t) * kMaxDeposit; }
  int leader() const {
    int t = 0;
    while (!live[t]) ++t;
    return t;
  }
};

// A threadgroup-wide collective with data (e.g. a cooperative tensor
// operation): like a barrier, but every thread deposits `size` bytes.
GroupExchange arrive_threadgroup(const Site& site, const void* arg, std::size_t size);

// The calling thread's index in its threadgroup, the threadgroup's size, and
// a number that changes from threadgroup to threadgroup (used to vary
// implementation-defined layouts so kernels cannot come to depend on them).
int thread_index();
int threads_per_threadgroup();
std::uint32_t layout_seed();

// Scratch shared by the lanes of the caller's simdgroup for the current
// collective (kMaxDeposit bytes), valid until the lanes' next collective:
// lets the leader compute a result once and the other lanes copy it.
void* shared_result();

}  // namespace emu
}  // namespace metal
}  // namespace onebit

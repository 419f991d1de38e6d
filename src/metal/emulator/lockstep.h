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

// What Metal leaves to the implementation, chosen under a seed so that a
// kernel that passes relies only on what Apple guarantees. The seed is read
// from PYONEBIT_EMU_SEED at each launch (default 1); docs/metal.md lists
// what each choice covers. Orders and layouts are hashed from the seed;
// the switches below follow its low bits so that seeds 1 and 2 between them
// take every switch both ways.
struct Adversary {
  std::uint32_t seed = 1;
  bool flush_subnormals = false;      // float32 denormals flushed to zero (even seeds)
  bool multiply_accumulates = false;  // matmul2d mode::multiply adds to its destination (seed & 2)
  bool garbage_fill = false;          // threadgroup memory starts as random bytes, else NaN (odd seeds)
  int extra_capacity = 0;             // invalid slots in every cooperative tensor (seed % 3)

  static Adversary from_seed(std::uint32_t seed);
  static Adversary from_env();  // PYONEBIT_EMU_SEED, or seed 1; invalid values throw
};

// A well-mixed 32-bit hash of two values (for seeded orders and layouts).
std::uint32_t mix(std::uint32_t a, std::uint32_t b);

// How a reduction over `n` values combines them, chosen by `salt`:
// sequentially from a rotated start, the same backwards, or as a pairwise
// tree. `order` receives the indices to visit; the return value says whether
// to combine them pairwise (tree) or left to right.
bool reduction_order(std::uint32_t salt, int n, int* order);

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
  std::uint32_t salt;             // the same for every lane of this collective (seeded)

  const void* of(int l) const { return deposits + static_cast<std::size_t>(l) * kMaxDeposit; }
  bool is_live(int l) const { return (live >> l) & 1u; }
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
  std::uint32_t salt;             // the same for every thread of this collective (seeded)

  const void* of(int t) const { return deposits + static_cast<std::size_t>(t) * kMaxDeposit; }
};

// A threadgroup-wide collective with data (e.g. a cooperative tensor
// operation): like a barrier, but every thread deposits `size` bytes.
GroupExchange arrive_threadgroup(const Site& site, const void* arg, std::size_t size);

// The calling thread's index in its threadgroup, the threadgroup's size, a
// number that changes from threadgroup to threadgroup and with the seed (used
// to vary implementation-defined layouts so kernels cannot come to depend on
// them), and the running launch's choices.
int thread_index();
int threads_per_threadgroup();
std::uint32_t layout_seed();
const Adversary& adversary();

// Scratch shared by the lanes of the caller's simdgroup for the current
// collective (kMaxDeposit bytes), valid until the lanes' next collective:
// lets one lane compute a result once and the other lanes copy it.
void* shared_result();

// True for exactly one participant of the simdgroup (threadgroup) collective
// the caller completed last: the first of them to run again. Threads resume
// in a seeded order, so it is no fixed lane; fibers are never preempted, so
// what it does before its next collective happens before any other
// participant resumes: the place to compute a collective's result once.
bool first_in_simdgroup();
bool first_in_threadgroup();

}  // namespace emu
}  // namespace metal
}  // namespace onebit

// Counters of how the Metal backend reached the caller's memory: arrays
// wrapped in place (zero copy) versus copied because wrapping failed. Header
// only and free of Metal headers, so the Python binding can read them in
// every build (all zero when built without Metal).
#pragma once

#include <atomic>
#include <cstdint>

namespace onebit {
namespace metal {

struct Stats {
  std::atomic<std::uint64_t> wrapped{0};         // arrays bound without a copy
  std::atomic<std::uint64_t> copied_inputs{0};   // inputs copied: wrapping failed
  std::atomic<std::uint64_t> copied_outputs{0};  // outputs computed aside, copied back
};

// One instance per process (an inline function's static is shared by every
// translation unit of the extension).
inline Stats& stats() {
  static Stats s;
  return s;
}

// A plain copy for callers that cannot read atomics (Cython).
struct StatsSnapshot {
  bool built = false;  // compiled with the Metal backend
  std::uint64_t wrapped = 0, copied_inputs = 0, copied_outputs = 0;
};

inline StatsSnapshot stats_snapshot() {
  StatsSnapshot s;
#ifdef ONEBIT_WITH_METAL
  s.built = true;
#endif
  s.wrapped = stats().wrapped.load();
  s.copied_inputs = stats().copied_inputs.load();
  s.copied_outputs = stats().copied_outputs.load();
  return s;
}

}  // namespace metal
}  // namespace onebit

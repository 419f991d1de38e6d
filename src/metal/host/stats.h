// Counters of how the Metal backend reached the caller's memory (arrays
// wrapped in place versus copied), and what the kernel library holds: per
// .metal family, whether it loaded or compiled, at which Metal language
// version, and Metal's error where it did not. Header only and free of Metal
// headers, so the Python binding can read them in every build (zero and
// empty when built without Metal).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace onebit {
namespace metal {

// One .metal source (a kernel family: qmv.metal, qmm_nax.metal, ...).
struct FamilyStatus {
  std::string source;    // "qmv.metal"
  std::string origin;    // "metallib" (prebuilt), "compiled" (run time) or "skipped"
  std::string language;  // Metal language version it was built at, "3.1"
  bool ok = false;       // its library exists (it may still instantiate nothing)
  std::string error;     // why not (Metal's text, or why it was skipped)
};

struct LibraryStatus {
  bool loaded = false;          // the library was loaded (or its load tried) once
  std::string os;               // macOS version as the host reads it ("26.2"; 16.x mapped)
  std::string metallib_error;   // why an embedded metallib was not used, if one was refused
  bool nax_kernels = false;     // qmm_t_nax_* present (DeviceCaps::nax_kernels)
  bool bfloat_kernels = false;  // bfloat16 kernels present (DeviceCaps::bfloat_kernels)
  std::vector<FamilyStatus> families;
};

struct Stats {
  std::atomic<std::uint64_t> wrapped{0};            // arrays bound without a copy
  std::atomic<std::uint64_t> copied_inputs{0};      // inputs copied: wrapping failed
  std::atomic<std::uint64_t> copied_outputs{0};     // outputs computed aside, copied back
  std::atomic<std::uint64_t> copied_misaligned{0};  // inputs copied: not aligned to their element
  std::mutex library_mutex;
  LibraryStatus library;  // written once by library.cpp, under library_mutex
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
  std::uint64_t wrapped = 0, copied_inputs = 0, copied_outputs = 0, copied_misaligned = 0;
  LibraryStatus library;
};

inline StatsSnapshot stats_snapshot() {
  StatsSnapshot s;
#ifdef ONEBIT_WITH_METAL
  s.built = true;
#endif
  s.wrapped = stats().wrapped.load();
  s.copied_inputs = stats().copied_inputs.load();
  s.copied_outputs = stats().copied_outputs.load();
  s.copied_misaligned = stats().copied_misaligned.load();
  std::lock_guard<std::mutex> lock(stats().library_mutex);
  s.library = stats().library;
  return s;
}

// Loads the kernel library of the default device now (it is otherwise loaded
// by the first product), so that stats_snapshot().library says what compiled.
// False when there is no usable device. Defined in library.cpp.
#ifdef ONEBIT_WITH_METAL
bool load_library();
#else
inline bool load_library() { return false; }
#endif

}  // namespace metal
}  // namespace onebit

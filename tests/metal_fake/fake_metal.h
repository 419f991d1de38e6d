// A recording fake of the slice of the Objective-C runtime, Foundation,
// Metal and libdispatch that src/metal/host calls, so the host code links and
// runs on Linux (x86-64 SysV calling convention; see fake_metal.cpp). It is
// not a GPU: a dispatch runs the C++ function the test registers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fake {

// Read once from the environment (the device is a per-process singleton):
// FAKE_METAL_FAMILY (Apple GPU family, default 8), FAKE_METAL_OS ("14.0", what
// NSProcessInfo reports), FAKE_METAL_REFUSE_NOCOPY, FAKE_METAL_FAIL_COMPILE
// ("1": every source fails; other text: the sources containing it fail),
// FAKE_METAL_FAIL_COMMAND, FAKE_METAL_STATIC_TG_MEMORY (bytes every pipeline
// reports as staticThreadgroupMemoryLength).
//
// Fake sources and metallibs are text: newFunctionWithName finds a kernel
// when its name occurs in the library's text. A run-time compile keeps a line
// "@X.Y names..." only when the compile options' language version is at
// least X.Y (as `#if __HAVE_BFLOAT__` keeps bfloat kernels from Metal 3.1
// on). A metallib is "FAKELIB..."; one whose first line holds "min=X.Y"
// loads only on macOS X.Y or later (its deployment target).
struct Config {
  int family = 8;
  int os_major = 14, os_minor = 0;
  bool refuse_nocopy = false, fail_command = false;
  std::string fail_compile;  // empty: none
  unsigned long static_tg_memory = 0;
};
const Config& config();

struct Bound {
  std::uintptr_t buffer_id = 0;  // 0: inline bytes
  char* contents = nullptr;      // buffer start (page-aligned for no-copy buffers)
  std::size_t length = 0, offset = 0;
  bool no_copy = false;
  std::vector<std::uint8_t> bytes;  // setBytes contents
  char* data() const { return contents + offset; }
};

struct Dispatched {
  std::string kernel;
  std::map<unsigned long, Bound> buffers;            // by [[buffer(i)]]
  std::map<unsigned long, unsigned long> tg_memory;  // by [[threadgroup(j)]]
  unsigned long grid[3] = {0, 0, 0}, threads[3] = {0, 0, 0};
};

// What the "GPU" runs at commit; the test installs it.
using Kernel = void (*)(const Dispatched&);
void set_kernel(Kernel kernel);

struct Counters {
  int source_compiles = 0, data_loads = 0, pipelines = 0, dispatches = 0;
  int live_buffers = 0;             // created and not yet released
  int autoreleased_without_pool = 0;
  bool fast_math = true;            // last CompileOptions setting
  // Every run-time compile: the source's first line and the language version
  // set on its options (0: never set).
  std::vector<std::pair<std::string, unsigned long>> compiles;
};
Counters counters();
std::vector<Dispatched> dispatched();  // every committed dispatch, in order
void reset_dispatched();

}  // namespace fake

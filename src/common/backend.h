// The backend registry: every way this build can run a quantized matmul.
#pragma once

#include <string>
#include <vector>

#include "onebit/onebit.h"

namespace onebit {

struct Backend {
  const char* name;
  bool (*available)();                             // usable on this machine
  void (*run)(const MatmulPlan& plan, void* out);  // plan validated; out allocated
};

// All backends compiled in, best first.
const std::vector<Backend>& compiled_backends();

// The named backend ("" = best available); ValueError if it is not usable here.
const Backend& find_backend(const std::string& name);

namespace cpu {
const Backend& backend();
}

#ifdef ONEBIT_WITH_METAL
namespace metal {
const Backend& backend();  // src/metal/host/backend.cpp (macOS builds)
}
#endif

#ifdef ONEBIT_WITH_METAL_EMULATOR
namespace metal {
const Backend& emulated_backend();  // src/metal/emulated_backend.cpp (builds without Metal)
}
#endif

}  // namespace onebit

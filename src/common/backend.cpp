// The backend registry (backend.h).
#include "backend.h"

#include <string>

namespace onebit {

const std::vector<Backend>& compiled_backends() {
  // "cpu" stays first (the default): it is the reference the Metal kernels
  // are validated against, and the Metal backends are chosen by name.
  static const std::vector<Backend> all = {
      cpu::backend(),
#ifdef ONEBIT_WITH_METAL
      metal::backend(),
#endif
#ifdef ONEBIT_WITH_METAL_EMULATOR
      metal::emulated_backend(),
#endif
  };
  return all;
}

const Backend& find_backend(const std::string& name) {
  for (const Backend& b : compiled_backends())
    if (b.available() && (name.empty() || name == b.name)) return b;
  std::string have;
  for (const std::string& n : backends()) have += (have.empty() ? "'" : ", '") + n + "'";
  throw ValueError("[quantized_matmul] backend '" + name + "' is not available; available: " + have);
}

}  // namespace onebit

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

std::vector<std::string> backends() {
  std::vector<std::string> names;
  for (const Backend& b : compiled_backends())
    if (b.available()) names.emplace_back(b.name);
  return names;
}

const Backend& find_backend(const std::string& name) {
  for (const Backend& b : compiled_backends())
    if (b.available() && (name.empty() || name == b.name)) return b;
  std::string have;
  for (const std::string& n : backends()) have += (have.empty() ? "'" : ", '") + n + "'";
  throw ValueError("[quantized_matmul] backend '" + name + "' is not available; available: " + have);
}

void quantized_matmul(const MatmulPlan& plan, void* out, const std::string& backend) {
  const Backend& b = find_backend(backend);
  if (plan.layout != WeightLayout::mlx && b.run != cpu::backend().run)
    throw ValueError(std::string("[quantized_matmul] layout='") + layout_name(plan.layout) +
                     "' runs on the 'cpu' backend only, not on '" + b.name + "'");
  b.run(plan, out);
}

}  // namespace onebit

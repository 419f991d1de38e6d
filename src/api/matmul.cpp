// The public quantized_matmul and backends() (onebit.h): a validated plan
// (plan.cpp) runs on the backend the registry (common/backend.cpp) names.
#include "../common/backend.h"
#include "../common/checks.h"

namespace onebit {

std::vector<std::string> backends() {
  std::vector<std::string> names;
  for (const Backend& b : compiled_backends())
    if (b.available()) names.emplace_back(b.name);
  return names;
}

void quantized_matmul(const MatmulPlan& plan, void* out, const std::string& backend) {
  const Backend& b = find_backend(backend);
  check_backend_for(plan, b.name);
  b.run(plan, out);
}

}  // namespace onebit

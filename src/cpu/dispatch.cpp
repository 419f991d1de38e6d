// Run-time choice of the CPU kernel variant.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "../common/checks.h"
#include "../common/dtype.h"
#include "isa.h"
#include "kernel_choice.h"

#if ONEBIT_CPU_X86
#include <cpuid.h>
#endif

namespace onebit {
namespace cpu {

namespace {

bool always() { return true; }

std::string quoted_list(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

// Finds a usable variant by name, or explains why not (`source` says where
// the name came from, for the message).
const Isa& find_isa(const std::string& name, const std::string& source) {
  for (const Isa& isa : compiled_isas()) {
    if (name != isa.name) continue;
    if (!isa.supported())
      throw ValueError("[cpu] " + source + "'" + name +
                       "' is compiled in but this CPU does not support it; supported: " +
                       quoted_list(cpu_kernels_supported()));
    return isa;
  }
  throw ValueError("[cpu] " + source + "'" + name + "' is not a CPU kernel of this build; compiled: " +
                   quoted_list(cpu_kernels_compiled()));
}

std::atomic<const Isa*> g_active{nullptr};
std::mutex g_resolve;

}  // namespace

#if ONEBIT_CPU_X86
bool x86_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
#endif

const std::vector<Isa>& compiled_isas() {
  static const std::vector<Isa> all = {
#if ONEBIT_CPU_X86
      {"avx512", avx512_supported, avx512_qmm, &kAvx512Tuning, avx512_convert},
      {"avx2", avx2_supported, avx2_qmm, &kAvx2Tuning, avx2_convert},
#endif
#if ONEBIT_CPU_ARM64
      {"neon", always, neon_qmm, &kNeonTuning, neon_convert},
#endif
      {"scalar", always, reference_qmm, nullptr, convert},
  };
  return all;
}

const Isa& active_isa() {
  if (const Isa* isa = g_active.load()) return *isa;
  std::lock_guard<std::mutex> lock(g_resolve);
  if (const Isa* isa = g_active.load()) return *isa;
  const Isa* chosen = nullptr;
  if (const char* env = std::getenv("PYONEBIT_CPU_ISA")) {
    chosen = &find_isa(env, "PYONEBIT_CPU_ISA=");
  } else {
    for (const Isa& isa : compiled_isas())
      if (isa.supported()) {
        chosen = &isa;
        break;
      }
  }
  g_active.store(chosen);
  return *chosen;
}

}  // namespace cpu

std::vector<std::string> cpu_kernels_compiled() {
  std::vector<std::string> names;
  for (const cpu::Isa& isa : cpu::compiled_isas()) names.emplace_back(isa.name);
  return names;
}

std::vector<std::string> cpu_kernels_supported() {
  std::vector<std::string> names;
  for (const cpu::Isa& isa : cpu::compiled_isas())
    if (isa.supported()) names.emplace_back(isa.name);
  return names;
}

std::string cpu_kernel_active() { return cpu::active_isa().name; }

WeightLayout cpu_preferred_layout(const QuantSpec& spec) {
  check_spec(spec, "cpu_preferred_layout");
  return cpu::preferred_layout(spec, cpu::active_isa().tuning);
}

void set_cpu_kernel(const std::string& name) {
  const cpu::Isa& isa = cpu::find_isa(name, "");
  std::lock_guard<std::mutex> lock(cpu::g_resolve);
  cpu::g_active.store(&isa);
}

}  // namespace onebit

// choose_cpu_kernel (kernel_choice.h): every rule of the CPU kernel choice.
#include "kernel_choice.h"

#include <atomic>
#include <cstring>

#include "isa.h"

namespace onebit {
namespace cpu {

namespace {

// -1: each ISA's own parallel_work (set_parallel_threshold, for tests).
std::atomic<std::int64_t> g_parallel_override{-1};

CpuKernelChoice choose(const KernelShape& s, const KernelTuning& t) {
  const bool lut_capable = s.transpose && lut_serves(t, s.bits);
  if (lut_capable && s.bits == 1)
    return {CpuKernel::lut, false, false, "1 bit, transpose: table lookups beat masked adds and FMAs at any M"};
  if (lut_capable && s.M <= t.lut_max_m_2bit)
    return {CpuKernel::lut, false, false, "2 bits, transpose, M <= lut_max_m_2bit"};
  const bool slabs = s.layout != WeightLayout::mlx;  // only the lookup kernel reads interleaved16
  if (has_vector_decode(s.bits)) {
    if (s.transpose && s.M <= (s.bits == 1 ? t.rows_max_m_1bit : t.rows_max_m))
      return {CpuKernel::rows, slabs, false, "transpose, small M: W rows decoded in registers"};
    if (!s.transpose && s.M <= (s.bits == 1 ? t.cols_max_m_1bit : t.cols_max_m))
      return {CpuKernel::cols, slabs, false, "no transpose, small M: vectorised along N"};
    return {CpuKernel::panel, slabs, false, "large M: dequantized panels amortised over the x rows"};
  }
  return {CpuKernel::panel, slabs, false, "3, 5 or 6 bits: codes straddle words, no vector decoder"};
}

}  // namespace

const char* kernel_name(CpuKernel kernel) {
  switch (kernel) {
    case CpuKernel::reference: return "reference";
    case CpuKernel::zero: return "zero";
    case CpuKernel::lut: return "lut";
    case CpuKernel::rows: return "rows";
    case CpuKernel::cols: return "cols";
    case CpuKernel::panel: return "panel";
  }
  return "?";
}

const KernelTuning* tuning_for(const char* isa) {
  for (const KernelTuning* t : {&kAvx512Tuning, &kAvx2Tuning, &kNeonTuning})
    if (std::strcmp(t->isa, isa) == 0) return t;
  return nullptr;
}

CpuKernelChoice choose_cpu_kernel(const KernelShape& s, const KernelTuning* tuning) {
  CpuKernelChoice c;
  if (!tuning)
    c = {CpuKernel::reference, false, false, "the scalar reference ISA"};
  else if (s.K == 0)
    c = {CpuKernel::zero, false, false, "K = 0: an empty sum"};
  else
    c = choose(s, *tuning);
  // In double: the product of four dimensions can exceed 64 bits.
  const std::int64_t override_work = g_parallel_override.load(std::memory_order_relaxed);
  const double limit = static_cast<double>(override_work >= 0 ? override_work
                                           : tuning            ? tuning->parallel_work
                                                               : kParallelWork);
  c.serial = static_cast<double>(s.M) * s.N * s.K * s.bits < limit;
  return c;
}

WeightLayout preferred_layout(const QuantSpec& spec, const KernelTuning* tuning) {
  return tuning && lut_serves(*tuning, 1) && spec.bits == 1 ? WeightLayout::interleaved16 : WeightLayout::mlx;
}

CpuKernelChoice plan_cpu_kernel(const MatmulPlan& p, const std::string& isa) {
  const KernelTuning* tuning = isa.empty() ? active_isa().tuning : tuning_for(isa.c_str());
  if (!isa.empty() && !tuning && isa != "scalar")
    throw ValueError("[cpu_kernel] isa must be 'avx512', 'avx2', 'neon' or 'scalar', got '" + isa + "'");
  return choose_cpu_kernel({p.M, p.N, p.K, p.spec.bits, p.transpose, p.layout}, tuning);
}

void set_parallel_threshold(std::int64_t work) { g_parallel_override.store(work < 0 ? -1 : work); }

}  // namespace cpu
}  // namespace onebit

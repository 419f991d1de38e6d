// Which CPU kernel runs a product, and why: the one function that decides
// (choose_cpu_kernel). The backend asks it once per call, passes the answer
// to the ISA's kernels in QmmArgs, and records it in the trace
// ("qmm_<isa>_<kernel>").
#pragma once

#include <cstdint>
#include <string>

#include "kernel_tuning.h"
#include "onebit/onebit.h"

namespace onebit {
namespace cpu {

enum class CpuKernel : std::uint8_t {
  reference,  // the scalar reference (the "scalar" ISA): float64 sums
  zero,       // K = 0: the empty sum, zeros
  lut,        // transpose=True: sums of x looked up by 4 (AVX-512) or 3 (AVX2) packed bits (qmm_lut.h)
  rows,       // transpose=True, small M: W rows against x rows, decoded in registers (qmm_rows.h)
  cols,       // transpose=False, small M: vectorised along N (qmm_cols.h)
  panel,      // everything else: W dequantized into float32 panels, register-blocked FMAs (qmm_panel.h)
};

const char* kernel_name(CpuKernel kernel);

// Bit widths with a vector decoder; 3, 5 and 6 (codes straddle words) go
// through the panel kernel's scalar decode.
constexpr bool has_vector_decode(int bits) { return bits == 1 || bits == 2 || bits == 4 || bits == 8; }

// Whether the ISA has the lookup kernel for B-bit codes: 1 and 2 bits; wider
// codes keep the row kernel's dequantize-then-multiply (qmm_rows.h).
constexpr bool lut_serves(const KernelTuning& t, int bits) { return t.lut_bits > 0 && bits <= 2; }

// What choose_cpu_kernel reads of a call.
struct KernelShape {
  std::int64_t M, N, K;
  int bits;
  bool transpose;
  WeightLayout layout;
};

struct CpuKernelChoice {
  CpuKernel kernel = CpuKernel::reference;
  bool slabs = false;   // interleaved16 W put back in mlx order 512 rows at a time first (run_deinterleaved)
  bool serial = false;  // too little work to wake the thread pool: runs on the calling thread
  const char* why = "";  // the rule that decided, in words
};

// tuning: the ISA's row (kernel_tuning.h); null for the scalar reference.
CpuKernelChoice choose_cpu_kernel(const KernelShape& shape, const KernelTuning* tuning);

// The layout the ISA's kernels read fastest (cpu_preferred_layout, onebit.h):
// interleaved16 where the lookup kernel serves every M (1 bit), else mlx.
WeightLayout preferred_layout(const QuantSpec& spec, const KernelTuning* tuning);

// The choice for a validated plan on the named ISA ("" = the active one),
// as choose_cpu_kernel makes it; for tests and the trace.
CpuKernelChoice plan_cpu_kernel(const MatmulPlan& plan, const std::string& isa);

}  // namespace cpu
}  // namespace onebit

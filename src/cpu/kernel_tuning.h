// Every number that tunes the CPU kernels of one instruction set, and every
// threshold of the kernel choice (kernel_choice.cpp): one row per ISA. The
// ISA traits (avx512.cpp, ...) point at their row; nothing else restates it.
// Why each value is what it is: docs/cpu_kernels.md.
#pragma once

#include <cstdint>

namespace onebit {
namespace cpu {

struct KernelTuning {
  const char* isa;
  // The choice (choose_cpu_kernel).
  int lut_bits;         // index bits of the in-register float table lookup (L = 2^lut_bits); 0: no lookup kernel
  int lut_max_m_2bit;   // x rows up to which the lookup kernel takes 2-bit codes (then the row kernel)
  int rows_max_m_1bit;  // transpose=True: x rows up to which the row kernel beats the panel kernel, 1 bit
  int rows_max_m;       //   ... 2, 4 and 8 bits
  int cols_max_m_1bit;  // transpose=False: x rows up to which the column kernel beats the panel kernel, 1 bit
  int cols_max_m;       //   ... 2, 4 and 8 bits
  std::int64_t parallel_work;  // M*N*K*bits per batch below which a call stays on the calling thread
  // The kernels' blocking.
  int rows_m1;          // W rows per pass of the row kernel at M = 1
  int rows_tile_m;      // x rows x ...
  int rows_tile_n;      //   ... W rows per pass of the row kernel at M > 1
  int cols_rows;        // x rows x ...
  int cols_vecs;        //   ... column vectors per pass of the column kernel
  int panel_mr;         // x rows of the panel micro-kernel
  int lut_share;        // lane groups (L W rows each) that share each table load: a pass of the lookup kernel
  int lut_rows_x;       // x rows that share each shifted index of the lookup kernel at M > 1
};

// Below this much work (M*N*K*bits per batch) waking the pool's workers costs
// more than it saves.
inline constexpr std::int64_t kParallelWork = std::int64_t{1} << 20;

// clang-format off
//                                           lut  lut   rows rows cols cols parallel       rows tile tile cols cols panel lut   lut
//                                           bits M2    M1b  M    M1b  M    work           m1   m    n    rows vecs mr    share rows_x
inline constexpr KernelTuning kAvx512Tuning{"avx512", 4, 2,  64,  32,  32,  8, kParallelWork,  8,   3,   4,   2,   8,   8,    4,    1};
inline constexpr KernelTuning kAvx2Tuning  {"avx2",   3, 1,  64,  32,  32,  8, kParallelWork,  4,   4,   2,   1,   8,   6,    4,    2};
inline constexpr KernelTuning kNeonTuning  {"neon",   0, 0,  64,  32,  32,  8, kParallelWork,  8,   2,   4,   2,   8,   8,    0,    1};
// clang-format on

// The row of a SIMD ISA by name (every row exists in every build, so the
// choice can be inspected for any ISA); null for "scalar" or an unknown name.
const KernelTuning* tuning_for(const char* isa);

}  // namespace cpu
}  // namespace onebit

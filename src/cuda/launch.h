// Between the host side (backend.cu) and the kernel instantiations
// (kernels.cu, compiled once per bit width with ONEBIT_CUDA_BITS).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "codes.cuh"
#include "onebit/onebit.h"

namespace onebit {
namespace cuda {

enum class Kernel { qmv_digits_t, qmv_lut_t, qmv_stream_t, qmv_tc_t, qmv_staged_t, qmv_t, qmm_tc_t, qmm_t, qmm_n };

// Largest M each matrix-vector kernel takes: qmv_staged_t one row of x (staged in shared
// memory); qmv_tc_t (1 bit, float16 / bfloat16 x, from M = 2) 16 (two mma tiles of N =
// 8); qmv_t (the rest from M = 2) 8 (its accumulators live in registers).
constexpr int kTcvMaxM = 16;
// qmv_stream_t (1 bit, M = 1) holds all of x in shared memory, 4.25 bytes per value
// (stream_smem_bytes): K up to kStreamMaxK where a block may have 227 KB (sm_90), less on
// devices that offer less (device_limits).
constexpr int kStreamMaxK = 53248;
constexpr int kStagedMaxM = 1;
constexpr int kQmvMaxM = 8;

// The current device and what it offers (each device asked once).
struct DeviceLimits {
  int ordinal;  // cudaGetDevice's
  int multiprocessors;
  std::size_t shared_per_multiprocessor;  // bytes
  std::size_t shared_per_block;           // bytes a block may opt in to
  bool clusters;                          // thread block clusters (sm_90+)
};
const DeviceLimits& device_limits();

// Launches `kernel` for one matrix product, asynchronously on `stream`; `early`: as a
// programmatic dependent launch (it may start before the previous kernel ends; see codes.cuh).
template <int BITS>
void launch(Kernel kernel, DType x, DType s, const KernelArgs& args, cudaStream_t stream,
            bool early);

}  // namespace cuda
}  // namespace onebit

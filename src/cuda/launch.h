// Between the host side (backend.cu) and the kernel instantiations
// (kernels.cu, compiled once per bit width with ONEBIT_CUDA_BITS).
#pragma once

#include <cuda_runtime.h>

#include "codes.cuh"
#include "onebit/onebit.h"

namespace onebit {
namespace cuda {

enum class Kernel { qmv_t, qmm_tc_t, qmm_t, qmm_n };

// Largest M the matrix-vector kernel takes (its accumulators live in registers).
constexpr int kQmvMaxM = 8;

// Launches `kernel` for one matrix product, asynchronously on `stream`; `early`: as a
// programmatic dependent launch (it may start before the previous kernel ends; see codes.cuh).
template <int BITS>
void launch(Kernel kernel, DType x, DType s, const KernelArgs& args, cudaStream_t stream,
            bool early);

}  // namespace cuda
}  // namespace onebit

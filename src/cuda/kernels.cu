// Every kernel for one bit width (ONEBIT_CUDA_BITS, set by the build): the
// build compiles this file once per width, in parallel.
#include "launch.h"
#include "qmm_simt.cuh"
#include "qmv.cuh"

#ifndef ONEBIT_CUDA_BITS
#error "compile with -DONEBIT_CUDA_BITS=<bits>"
#endif

namespace onebit {
namespace cuda {
namespace {

constexpr int B = ONEBIT_CUDA_BITS;

template <class X, class S>
void launch_typed(Kernel kernel, const KernelArgs& a, cudaStream_t stream) {
  if (kernel == Kernel::qmv_t) {
    constexpr int kRowsPerBlock = kQmvWarps * kQmvRows;
    const dim3 grid((a.N + kRowsPerBlock - 1) / kRowsPerBlock), block(kQmvWarps * 32);
    if (a.M <= 1) qmv_t<B, 1, X, S><<<grid, block, 0, stream>>>(a);
    else if (a.M <= 2) qmv_t<B, 2, X, S><<<grid, block, 0, stream>>>(a);
    else if (a.M <= 4) qmv_t<B, 4, X, S><<<grid, block, 0, stream>>>(a);
    else qmv_t<B, kQmvMaxM, X, S><<<grid, block, 0, stream>>>(a);
    return;
  }
  const dim3 grid((a.M + kTileM - 1) / kTileM, (a.N + kTileN - 1) / kTileN), block(kTileThreads);
  if (kernel == Kernel::qmm_t) qmm_simt<B, true, X, S><<<grid, block, 0, stream>>>(a);
  else qmm_simt<B, false, X, S><<<grid, block, 0, stream>>>(a);
}

template <class X>
void launch_x(Kernel kernel, DType s, const KernelArgs& a, cudaStream_t stream) {
  switch (s) {
    case DType::float32: return launch_typed<X, float>(kernel, a, stream);
    case DType::float16: return launch_typed<X, __half>(kernel, a, stream);
    default: return launch_typed<X, __nv_bfloat16>(kernel, a, stream);
  }
}

}  // namespace

template <>
void launch<B>(Kernel kernel, DType x, DType s, const KernelArgs& a, cudaStream_t stream) {
  switch (x) {
    case DType::float32: return launch_x<float>(kernel, s, a, stream);
    case DType::float16: return launch_x<__half>(kernel, s, a, stream);
    default: return launch_x<__nv_bfloat16>(kernel, s, a, stream);
  }
}

}  // namespace cuda
}  // namespace onebit

// The CUDA backend's host API, called by the binding (pyonebit/_cuda.pyx).
// Plans come from the core's validation (src/common/plan.cpp) with device
// pointers in their ArrayRefs; nothing here dereferences host memory of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "onebit/onebit.h"

namespace onebit {
namespace cuda {

// Usable devices (0 when the driver or a GPU is missing; never throws).
int device_count();
// Why device_count() is 0, or "" when it is not.
std::string device_error();

// Runs plan on `stream` (a cudaStream_t as an integer; 0 = the legacy default
// stream) writing the dense result to `out` (device memory). Asynchronous.
void quantized_matmul(const MatmulPlan& plan, void* out, std::uintptr_t stream);

// The kernel quantized_matmul launches for plan (for traces and tests).
std::string choose_kernel(const MatmulPlan& plan);

// Device memory for NumPy inputs and layer weights (explicit transfers).
void* device_alloc(std::size_t bytes);
void device_free(void* ptr);
void copy_to_device(void* dst, const void* src, std::size_t bytes, std::uintptr_t stream);
void copy_to_host(void* dst, const void* src, std::size_t bytes, std::uintptr_t stream);
void synchronize(std::uintptr_t stream);
int current_device();

}  // namespace cuda
}  // namespace onebit

// Compute pipelines for the embedded kernels, by kernel name.
#pragma once

#include <string>

#include "device.h"

namespace onebit {
namespace metal {

// Which optional kernels the loaded library holds (DeviceCaps::nax_kernels,
// DeviceCaps::bfloat_kernels).
struct KernelSet {
  bool nax = false;     // qmm_t_nax_* (qmm_nax.metal at Metal 4)
  bool bfloat = false;  // *_bfloat16_* (Metal 3.1 and later)
};

// Loads the kernel library once per process (later calls return at once),
// one .metal family at a time: from the embedded metallibs where they load,
// else compiled from the embedded sources at the OS's Metal language version
// (macOS 13: 3.0, 14: 3.1, 15: 3.2, 26: 4.0). A family that fails is recorded
// (stats().library: file, language version, Metal's error) and costs only its
// own kernels; it is never compiled again. Thread-safe.
KernelSet loaded_kernels(Device& device);

// The pipeline of an instantiated kernel ("qmv_fast_float16_gs_64_b_1"),
// built on first request and cached for the life of the process (loading
// the library first if needed). Thread-safe. Throws std::runtime_error with
// Metal's description when a pipeline fails, and, when the kernel is in no
// loaded library, with the families that failed and why.
MTL::ComputePipelineState* pipeline(Device& device, const std::string& kernel);

}  // namespace metal
}  // namespace onebit

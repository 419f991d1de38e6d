// Compute pipelines for the embedded kernels, by kernel name.
#pragma once

#include <string>

#include "device.h"

namespace onebit {
namespace metal {

// The pipeline of an instantiated kernel ("qmv_fast_float16_gs_64_b_1"),
// built on first request and cached for the life of the process. The Metal
// library behind it is loaded once: the prebuilt metallib when setup.py
// embedded one, else compiled at run time from the embedded sources.
// Thread-safe. Throws std::runtime_error with Metal's description when a
// library does not compile or the kernel does not exist.
MTL::ComputePipelineState* pipeline(Device& device, const std::string& kernel);

}  // namespace metal
}  // namespace onebit

// The matmuls no Metal kernel needs to run, shared by every Metal executor
// (the host backend and the emulated one).
#pragma once

#include <cstddef>

#include "onebit/onebit.h"

namespace onebit {
namespace metal {

// An empty output (nothing to do) or K = 0 (every sum is empty, and Metal
// cannot bind zero-length inputs: out is filled with +0.0). Returns true when
// it has handled the call; out_bytes is the size of the output.
bool matmul_without_kernel(const MatmulPlan& plan, void* out, std::size_t out_bytes);

}  // namespace metal
}  // namespace onebit

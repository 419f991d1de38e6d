// Executes one planner Dispatch on the GPU.
#pragma once

#include <array>

#include "../planner.h"
#include "buffers.h"
#include "device.h"

namespace onebit {
namespace metal {

// The buffer of every operand, indexed by Operand (Operand::bytes excluded:
// its contents travel in the Binding itself).
using Operands = std::array<Bound, static_cast<std::size_t>(Operand::bytes)>;

inline Bound& operand(Operands& operands, Operand which) {
  return operands[static_cast<std::size_t>(which)];
}

// Encodes `dispatch` with `operands` bound, commits and waits for completion
// (nothing, when a threadgroup count is zero: an empty output).
// Throws std::runtime_error for pipeline errors, a binding without a buffer,
// threads or threadgroup memory (the pipeline's static part included) over
// the limits, and command buffer failures (with Metal's description).
void execute(Device& device, const Dispatch& dispatch, const Operands& operands);

}  // namespace metal
}  // namespace onebit

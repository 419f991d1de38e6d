// Running planner Dispatches on the emulator: the matmul backend
// (emulated_backend.cpp) and the quantize/dequantize kernels, which have no
// backend slot in the public API and are reached from tests through private
// bindings (_emulated_quantize, _emulated_dequantize).
#pragma once

#include <cstdint>

#include "onebit/onebit.h"
#include "planner.h"

namespace onebit {
namespace metal {

// The memory behind each Operand of a Dispatch (null when unused). Whether
// the kernel reads or writes it is the kernel's business: quantize writes
// wq, scales and biases.
struct OperandMemory {
  const void* wq = nullptr;
  const void* scales = nullptr;
  const void* biases = nullptr;
  const void* x = nullptr;
  void* y = nullptr;
  const void* batch_shape = nullptr;
  const void* batch_strides = nullptr;
};

// Binds the Dispatch's buffers, launches it on the emulator and records it
// in the trace. A Dispatch with an empty grid does nothing.
void run_emulated(const Dispatch& d, const OperandMemory& memory);

// quantize / dequantize with the Metal kernels on the emulator. Same
// contracts as onebit::quantize / onebit::dequantize.
void emulated_quantize(const QuantizePlan& plan, std::uint32_t* wq, void* scales, void* biases);
void emulated_dequantize(const DequantizePlan& plan, void* out);

}  // namespace metal
}  // namespace onebit

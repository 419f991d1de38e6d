// Metal buffers over the caller's arrays (zero copy when Metal accepts the
// memory) and over data the host prepares.
#pragma once

#include <cstddef>

#include "device.h"

namespace onebit {
namespace metal {

// A kernel operand: a buffer, the byte offset of the data in it, and for an
// output that could not be wrapped, where finish_output copies it back.
struct Bound {
  NS::SharedPtr<MTL::Buffer> buffer;
  NS::UInteger offset = 0;
  void* copy_back_to = nullptr;
  std::size_t size = 0;
};

// `size` (> 0) bytes the kernel reads. Wrapped in place when possible, else
// copied (counted in stats().copied_inputs).
Bound bind_input(MTL::Device* device, const void* data, std::size_t size);

// `size` (> 0) bytes the kernel writes. Wrapped in place when possible, else
// a device buffer that finish_output copies to `data` (counted in
// stats().copied_outputs).
Bound bind_output(MTL::Device* device, void* data, std::size_t size);
void finish_output(const Bound& output);

// A new shared buffer of `size` (> 0) bytes for data the host writes
// (widened inputs); `data` non-null copies those bytes in.
Bound host_buffer(MTL::Device* device, std::size_t size, const void* data = nullptr);

}  // namespace metal
}  // namespace onebit

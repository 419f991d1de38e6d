// Metal buffers over the caller's arrays (zero copy when Metal accepts the
// memory) and over data the host prepares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "device.h"

namespace onebit {
namespace metal {

// A kernel operand: a buffer, the byte offset of the data in it, and for an
// output that could not be wrapped, where finish_output copies it back.
// For a small host array, `bytes` instead of a buffer: the encoder passes it
// with setBytes.
struct Bound {
  NS::SharedPtr<MTL::Buffer> buffer;
  NS::UInteger offset = 0;
  void* copy_back_to = nullptr;
  std::size_t size = 0;
  std::vector<std::uint8_t> bytes;
};

// setBytes "only works for data smaller than 4 kilobytes that doesn't
// persist" (MTLComputeCommandEncoder setBytes(_:length:index:)); 4 KiB and
// more go through a buffer.
constexpr std::size_t kInlineBytesLimit = 4096;
inline bool fits_inline(std::size_t size) { return size < kInlineBytesLimit; }

// `size` (> 0) bytes the kernel reads as elements of `alignment` bytes.
// Wrapped in place when possible, else copied (counted in
// stats().copied_inputs). Data not aligned to its element is always copied
// (stats().copied_misaligned): setBuffer's offset must be a multiple of the
// size of the data type the kernel reads ("For buffers binding to an argument
// using the device address space, align the offset to the data type's size",
// MTLComputeCommandEncoder setBuffer(_:offset:index:)).
Bound bind_input(MTL::Device* device, const void* data, std::size_t size, std::size_t alignment);

// `size` (> 0) bytes the kernel writes as elements of `alignment` bytes.
// Wrapped in place when possible, else a device buffer that finish_output
// copies to `data` (counted in stats().copied_outputs, or copied_misaligned
// when `data` is not aligned to its element).
Bound bind_output(MTL::Device* device, void* data, std::size_t size, std::size_t alignment);

// `size` bytes of host data for one dispatch: inline (setBytes) when
// fits_inline(size), else a new buffer holding a copy.
Bound small_array(MTL::Device* device, const void* data, std::size_t size);
void finish_output(const Bound& output);

// A new shared buffer of `size` (> 0) bytes for data the host writes
// (widened inputs); `data` non-null copies those bytes in.
Bound host_buffer(MTL::Device* device, std::size_t size, const void* data = nullptr);

}  // namespace metal
}  // namespace onebit

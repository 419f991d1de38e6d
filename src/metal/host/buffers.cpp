// Zero-copy binding of caller memory. Apple silicon memory is unified, so the
// GPU can use a NumPy array's memory directly; Metal only requires the
// wrapped range to be whole pages, so the buffer spans the pages that contain
// the array and the kernel sees the array at an offset into it.
#ifndef ONEBIT_WITH_METAL
#error "src/metal/host is built only with ONEBIT_WITH_METAL (macOS, see setup.py)"
#endif

#include "buffers.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "stats.h"

namespace onebit {
namespace metal {

namespace {

// CPU and GPU share memory; no managed/private copies.
constexpr MTL::ResourceOptions kShared = MTL::ResourceStorageModeShared;

std::uintptr_t page_size() {
  static const std::uintptr_t size = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  return size;  // 16 KiB on Apple silicon
}

// A buffer over the pages containing [data, data + size), or null when Metal
// refuses the memory (for example read-only or file-backed mappings, or more
// than maxBufferLength).
Bound wrap(MTL::Device* device, const void* data, std::size_t size) {
  const std::uintptr_t page = page_size();
  const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t begin = address & ~(page - 1);
  const std::uintptr_t end = (address + size + page - 1) & ~(page - 1);
  Bound bound;
  // The 4-argument newBuffer is bytesNoCopy (the 3-argument one copies). No
  // deallocator: the caller owns the memory and it outlives the command
  // buffer, which the backend waits for before returning.
  bound.buffer = NS::TransferPtr(
      device->newBuffer(reinterpret_cast<const void*>(begin), end - begin, kShared, nullptr));
  bound.offset = address - begin;
  bound.size = size;
  return bound;
}

void check_allocated(const Bound& bound, std::size_t size) {
  if (!bound.buffer) throw std::runtime_error("[metal] could not allocate a buffer of " +
                                              std::to_string(size) + " bytes");
}

bool misaligned(const void* data, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(data) % alignment != 0;
}

}  // namespace

Bound bind_input(MTL::Device* device, const void* data, std::size_t size, std::size_t alignment) {
  if (misaligned(data, alignment)) {  // the copy starts the buffer: offset 0
    ++stats().copied_misaligned;
    return host_buffer(device, size, data);
  }
  Bound bound = wrap(device, data, size);
  if (bound.buffer) {
    ++stats().wrapped;
    return bound;
  }
  ++stats().copied_inputs;
  return host_buffer(device, size, data);
}

Bound bind_output(MTL::Device* device, void* data, std::size_t size, std::size_t alignment) {
  const bool aligned = !misaligned(data, alignment);
  Bound bound = aligned ? wrap(device, data, size) : Bound{};
  if (bound.buffer) {
    ++stats().wrapped;
    return bound;
  }
  ++(aligned ? stats().copied_outputs : stats().copied_misaligned);
  bound = host_buffer(device, size);
  bound.copy_back_to = data;
  return bound;
}

Bound small_array(MTL::Device* device, const void* data, std::size_t size) {
  if (!fits_inline(size)) return host_buffer(device, size, data);
  Bound bound;
  bound.bytes.assign(static_cast<const std::uint8_t*>(data), static_cast<const std::uint8_t*>(data) + size);
  bound.size = size;
  return bound;
}

void finish_output(const Bound& output) {
  if (output.copy_back_to == nullptr) return;  // the kernel wrote in place
  std::memcpy(output.copy_back_to, static_cast<const char*>(output.buffer->contents()) + output.offset,
              output.size);
}

Bound host_buffer(MTL::Device* device, std::size_t size, const void* data) {
  Bound bound;
  bound.buffer = NS::TransferPtr(data ? device->newBuffer(data, size, kShared)  // copies `data`
                                      : device->newBuffer(size, kShared));
  bound.size = size;
  check_allocated(bound, size);
  return bound;
}

}  // namespace metal
}  // namespace onebit

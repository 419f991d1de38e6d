// The GPU this process uses: Metal device, command queue and the
// capabilities the planner needs.
#pragma once

#include <Foundation/Foundation.hpp>
#include <Metal/Metal.hpp>

#include "../planner.h"

namespace onebit {
namespace metal {

// The macOS version, as this process reads it (see os_version in device.cpp).
struct OsVersion {
  int major = 0, minor = 0;
  bool at_least(int ma, int mi) const { return major > ma || (major == ma && minor >= mi); }
};

struct Device {
  NS::SharedPtr<MTL::Device> mtl;
  NS::SharedPtr<MTL::CommandQueue> queue;
  DeviceCaps caps;  // nax_kernels / bfloat_kernels: see library.h loaded_kernels
  OsVersion os;
};

// The system default GPU, opened on first call; nullptr when there is none
// or it cannot run the kernels (see device.cpp). Thread-safe.
Device* default_device();

// The macOS version (16.x, as pre-26 SDK programs are told on 26.x, read as 26.x).
OsVersion os_version();

// Scope of an autorelease pool: metal-cpp returns autoreleased objects
// (command buffers, encoders, strings) and the threads that call into the
// backend (Python's, with the GIL released) have no pool of their own.
class AutoreleaseScope {
 public:
  AutoreleaseScope() : pool_(NS::AutoreleasePool::alloc()->init()) {}
  ~AutoreleaseScope() { pool_->release(); }
  AutoreleaseScope(const AutoreleaseScope&) = delete;
  AutoreleaseScope& operator=(const AutoreleaseScope&) = delete;

 private:
  NS::AutoreleasePool* pool_;
};

}  // namespace metal
}  // namespace onebit

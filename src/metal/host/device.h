// The GPU this process uses: Metal device, command queue and the
// capabilities the planner needs.
#pragma once

#include <Foundation/Foundation.hpp>
#include <Metal/Metal.hpp>

#include "../planner.h"

namespace onebit {
namespace metal {

struct Device {
  NS::SharedPtr<MTL::Device> mtl;
  NS::SharedPtr<MTL::CommandQueue> queue;
  DeviceCaps caps;
};

// The system default GPU, opened on first call; nullptr when there is none
// or it cannot run the kernels (see device.cpp). Thread-safe.
Device* default_device();

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

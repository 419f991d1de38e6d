// Device selection and capabilities.
#ifndef ONEBIT_WITH_METAL
#error "src/metal/host is built only with ONEBIT_WITH_METAL (macOS, see setup.py)"
#endif

#include "device.h"

namespace onebit {
namespace metal {

namespace {

// Every kernel uses simdgroup reductions, shuffles and simdgroup_matrix,
// which Apple GPUs have from the Apple7 family (M1, A14) on. Older or
// paravirtual devices (CI virtual machines report Apple5) are not offered.
bool can_run_kernels(MTL::Device* d) { return d->supportsFamily(MTL::GPUFamilyApple7); }

}  // namespace

// NSProcessInfo answers with the version the main program's SDK knows: on
// macOS 26 a process linked against a pre-26 SDK (many Python builds) is told
// "16.x", the compatibility number of 26.x (macOS went from 15 to 26), so
// 16.x is read as 26.x. __builtin_available(macOS 26.2, *) would ask the
// same question on a Mac, but cannot be exercised by the fake Metal on Linux.
OsVersion os_version() {
  const NS::OperatingSystemVersion v = NS::ProcessInfo::processInfo()->operatingSystemVersion();
  OsVersion os{static_cast<int>(v.majorVersion), static_cast<int>(v.minorVersion)};
  if (os.major == 16) os.major = 26;
  return os;
}

namespace {

// NAX: the neural accelerators of M5-class GPUs, reached through Metal 4
// tensor ops, usable from macOS 26.2. These metal-cpp headers (macOS 15 SDK)
// predate MTLGPUFamilyApple10, the M5 family; its value continues the
// Apple1 = 1001 ... Apple9 = 1009 numbering of MTL::GPUFamily.
bool has_nax(MTL::Device* d, const OsVersion& os) {
  constexpr auto kGPUFamilyApple10 = static_cast<MTL::GPUFamily>(1010);
  return os.at_least(26, 2) && d->supportsFamily(kGPUFamilyApple10);
}

DeviceCaps read_caps(MTL::Device* d, const OsVersion& os) {
  DeviceCaps caps;
  caps.name = d->name()->utf8String();
  // All Apple GPU families execute 32-wide simdgroups; Metal reports the
  // width only per pipeline (threadExecutionWidth), after the planner ran.
  caps.simd_width = 32;
  caps.max_threads_per_threadgroup = static_cast<int>(d->maxThreadsPerThreadgroup().width);
  caps.max_threadgroup_memory = static_cast<std::int64_t>(d->maxThreadgroupMemoryLength());
  caps.nax = has_nax(d, os);
  return caps;
}

Device* open_default_device() {
  AutoreleaseScope pool;  // name() returns an autoreleased string
  NS::SharedPtr<MTL::Device> mtl = NS::TransferPtr(MTL::CreateSystemDefaultDevice());
  if (!mtl || !can_run_kernels(mtl.get())) return nullptr;
  NS::SharedPtr<MTL::CommandQueue> queue = NS::TransferPtr(mtl->newCommandQueue());
  if (!queue) return nullptr;
  const OsVersion os = os_version();
  return new Device{mtl, queue, read_caps(mtl.get(), os), os};
}

}  // namespace

Device* default_device() {
  // Opened once (static initialisation is thread-safe) and never destroyed:
  // releasing Metal objects from static destructors at exit would race the
  // framework's own teardown.
  static Device* const device = open_default_device();
  return device;
}

}  // namespace metal
}  // namespace onebit

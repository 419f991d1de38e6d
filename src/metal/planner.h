// The Metal planner: pure C++, no Metal headers. From a validated operation
// and the device's capabilities it decides which kernel runs, with which
// template parameters (encoded in the kernel name), grid, threadgroup size,
// buffer bindings and threadgroup memory. The host encoder (macOS) and the
// emulator both execute its Dispatches, so routing is unit-tested everywhere.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "onebit/onebit.h"

namespace onebit {
namespace metal {

// When the planner may route to the NAX kernels (PYONEBIT_NAX=auto|on|off).
enum class NaxPolicy : std::uint8_t {
  automatic,  // when the device has NAX and the shape benefits
  on,         // whenever a NAX kernel exists for the call (tests, tuning)
  off,
};

// The policy named by PYONEBIT_NAX (unset or empty: automatic); ValueError
// for any other value.
NaxPolicy nax_policy_from_env();

struct DeviceCaps {
  std::string name = "emulated";
  int simd_width = 32;
  int max_threads_per_threadgroup = 1024;
  std::int64_t max_threadgroup_memory = 32768;  // bytes
  bool nax = false;                             // Metal 4 tensor ops usable (M5-class)
  NaxPolicy nax_policy = NaxPolicy::automatic;  // the user's choice, not a device property
  // What the loaded kernel library holds (not the device: the library). The
  // NAX kernels (qmm_t_nax_*) exist only where qmm_nax.metal was compiled at
  // Metal 4 (__HAVE_TENSOR__); the bfloat16 kernels only where the compiler
  // has bfloat (__HAVE_BFLOAT__, Metal 3.1 = macOS 14). The planner never
  // names a kernel the library lacks: NAX falls back to qmm_t, and bfloat16
  // raises ValueError. The emulator instantiates everything.
  bool nax_kernels = true;
  bool bfloat_kernels = true;
};

// What a buffer binding points at. Matmul kernels use wq..batch_strides as in
// README.md; quantize binds the float weights as `x` and writes wq/scales/
// biases; dequantize reads wq/scales/biases and writes `y`.
enum class Operand : std::uint8_t { wq, scales, biases, x, y, batch_shape, batch_strides, bytes };
const char* operand_name(Operand operand);  // "wq", ..., "bytes"

struct Binding {
  int index;                        // [[buffer(index)]]
  Operand operand;
  std::vector<std::uint8_t> bytes;  // contents when operand == bytes (constant structs)
};

struct Dispatch {
  std::string kernel;  // instantiated kernel name, e.g. "qmv_fast_float16_gs_64_b_1"
  std::array<std::uint32_t, 3> threadgroups{1, 1, 1};   // threadgroups per grid
  std::array<std::uint32_t, 3> threads{1, 1, 1};        // threads per threadgroup
  std::vector<Binding> buffers;                         // in index order, no gaps
  std::vector<std::int64_t> threadgroup_memory;         // bytes of [[threadgroup(j)]]
};

// T is the dtype the kernel runs in (the plan's output dtype; the executor
// widens x, scales and biases to it beforehand).
// A Dispatch with a zero in `threadgroups` has nothing to compute (an empty
// output); executors skip it. Throws ValueError when a dimension does not fit
// the kernels' 32-bit indexing, or for bfloat16 where caps.bfloat_kernels is
// false (no fallback: see check_dtype in planner.cpp).
Dispatch plan_matmul(const MatmulPlan& plan, const DeviceCaps& caps);
// Buffer 7 of a matmul dispatch: x's strides of the batch dims, then W's.
inline std::vector<std::int64_t> batch_strides(const BatchMap& batch) {
  std::vector<std::int64_t> strides = batch.x_stride;
  strides.insert(strides.end(), batch.w_stride.begin(), batch.w_stride.end());
  return strides;
}

// T is the dtype of w. The executor must reject non-finite w before running
// it (the kernel cannot raise; the CPU reference does).
Dispatch plan_quantize(const QuantizePlan& plan, const DeviceCaps& caps);

// T is the dtype of the scales: the kernel writes T and the executor converts
// to plan.out_dtype when it differs (the reference rounds to T first too).
Dispatch plan_dequantize(const DequantizePlan& plan, const DeviceCaps& caps);

// Name of the kernel instantiated from template `kernel` for these template
// parameters: "<kernel>_<dtype>_gs_<group_size>_b_<bits>[_sym]". The only
// place host code builds these names (kernels/instantiate.h is the shader's).
std::string kernel_name(const char* kernel, DType dtype, const QuantSpec& spec);

}  // namespace metal
}  // namespace onebit

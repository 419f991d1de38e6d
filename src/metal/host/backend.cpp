// The "metal" backend: binds a validated MatmulPlan's arrays, asks the planner
// for the dispatch and executes it on the default GPU.
#ifndef ONEBIT_WITH_METAL
#error "src/metal/host is built only with ONEBIT_WITH_METAL (macOS, see setup.py)"
#endif

#include <vector>

#include "../../common/backend.h"
#include "../../common/dtype.h"
#include "../no_kernel.h"
#include "../planner.h"
#include "buffers.h"
#include "device.h"
#include "encoder.h"
#include "library.h"

namespace onebit {
namespace metal {

namespace {

std::size_t byte_size(const ArrayRef& a) { return static_cast<std::size_t>(a.size()) * dtype_size(a.dtype); }

// An input in the kernel's dtype: the caller's memory when it already has
// that dtype, else widened on the CPU into a new buffer (exact: the output
// dtype is the promotion of x and scales, see README "Kernel ABI").
Bound input_as(MTL::Device* device, const ArrayRef& a, DType dtype) {
  if (a.dtype == dtype) return bind_input(device, a.data, byte_size(a), dtype_size(dtype));
  Bound widened = host_buffer(device, static_cast<std::size_t>(a.size()) * dtype_size(dtype));
  convert(a.data, a.dtype, widened.buffer->contents(), dtype, a.size());
  return widened;
}

// The batch dims' shape and strides: a few int64 per call, passed inline
// (setBytes) instead of a new buffer per call.
Bound int64_array(MTL::Device* device, const std::vector<std::int64_t>& v) {
  return small_array(device, v.data(), v.size() * sizeof(std::int64_t));
}

void run(const MatmulPlan& p, void* out) {
  std::size_t out_size = dtype_size(p.out_dtype);
  for (std::int64_t d : p.out_shape) out_size *= static_cast<std::size_t>(d);
  if (matmul_without_kernel(p, out, out_size)) return;

  Device& device = *default_device();
  MTL::Device* mtl = device.mtl.get();
  AutoreleaseScope pool;  // outlives every buffer below (declared first)
  // The planner chooses among the kernels the loaded library has (NAX falls
  // back to qmm_t; bfloat16 without bfloat kernels is a ValueError), before
  // any memory is wrapped or copied.
  DeviceCaps caps = device.caps;
  const KernelSet kernels = loaded_kernels(device);
  caps.nax_kernels = kernels.nax;
  caps.bfloat_kernels = kernels.bfloat;
  caps.nax_policy = nax_policy_from_env();
  const Dispatch dispatch = plan_matmul(p, caps);

  Operands ops;
  operand(ops, Operand::wq) = bind_input(mtl, p.wq.data, byte_size(p.wq), dtype_size(p.wq.dtype));
  operand(ops, Operand::scales) = input_as(mtl, p.scales, p.out_dtype);
  // Symmetric mode has no biases; the ABI binds scales in their place.
  operand(ops, Operand::biases) =
      p.biases.data ? input_as(mtl, p.biases, p.out_dtype) : operand(ops, Operand::scales);
  operand(ops, Operand::x) = input_as(mtl, p.x, p.out_dtype);
  operand(ops, Operand::y) = bind_output(mtl, out, out_size, dtype_size(p.out_dtype));
  operand(ops, Operand::batch_shape) = int64_array(mtl, p.batch.shape);
  operand(ops, Operand::batch_strides) = int64_array(mtl, batch_strides(p.batch));

  execute(device, dispatch, ops);
  finish_output(operand(ops, Operand::y));
}

bool available() { return default_device() != nullptr; }

}  // namespace

const Backend& backend() {
  static const Backend metal{"metal", available, run};
  return metal;
}

}  // namespace metal
}  // namespace onebit

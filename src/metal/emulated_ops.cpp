#include "emulated_ops.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/checks.h"
#include "../common/dtype.h"
#include "../common/trace.h"
#include "emulator/kernel_abi.h"

namespace onebit {
namespace metal {

void run_emulated(const Dispatch& d, const OperandMemory& m) {
  for (std::uint32_t n : d.threadgroups)
    if (n == 0) return;
  emu::Launch l;
  l.kernel = emu::find_kernel(d.kernel);
  if (!l.kernel)
    throw std::logic_error("[metal-emulated] the planner chose " + d.kernel +
                           ", which this build does not contain");
  for (const Binding& b : d.buffers) {
    const void* ptr = nullptr;
    switch (b.operand) {
      case Operand::wq: ptr = m.wq; break;
      case Operand::scales: ptr = m.scales; break;
      case Operand::biases: ptr = m.biases; break;
      case Operand::x: ptr = m.x; break;
      case Operand::y: ptr = m.y; break;
      case Operand::batch_shape: ptr = m.batch_shape; break;
      case Operand::batch_strides: ptr = m.batch_strides; break;
      case Operand::bytes: ptr = b.bytes.data(); break;
    }
    // The emulator's slots are untyped; kernel parameters carry the constness.
    l.buffers.push_back(const_cast<void*>(ptr));
  }
  l.threadgroups = d.threadgroups;
  l.threads = d.threads;
  l.threadgroup_memory = d.threadgroup_memory;
  emu::launch(l);
  trace_record("metal-emulated", d.kernel, d.threadgroups.data(), d.threads.data());
}

void emulated_quantize(const QuantizePlan& plan, std::uint32_t* wq, void* scales, void* biases) {
  check_quantize_call(plan, biases);  // the kernel cannot raise
  OperandMemory m;
  m.x = plan.w.data;
  m.wq = wq;
  m.scales = scales;
  m.biases = biases ? biases : scales;  // symmetric: bound, never written
  run_emulated(plan_quantize(plan, DeviceCaps{}), m);
}

void emulated_dequantize(const DequantizePlan& plan, void* out) {
  // The kernel writes the scales' dtype; convert afterwards if asked for
  // another (the reference rounds to the scales' dtype first as well).
  const bool same = plan.out_dtype == plan.scales.dtype;
  std::vector<unsigned char> tmp(same ? 0 : static_cast<std::size_t>(plan.rows * plan.K) *
                                                dtype_size(plan.scales.dtype));
  OperandMemory m;
  m.wq = plan.wq.data;
  m.scales = plan.scales.data;
  m.biases = plan.biases.data ? plan.biases.data : plan.scales.data;
  m.y = same ? out : tmp.data();
  run_emulated(plan_dequantize(plan, DeviceCaps{}), m);
  if (!same) convert(tmp.data(), plan.scales.dtype, out, plan.out_dtype, plan.rows * plan.K);
}

}  // namespace metal
}  // namespace onebit

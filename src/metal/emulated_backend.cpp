// The "metal-emulated" backend: executes the planner's Metal dispatches on
// the CPU emulator, running the very kernel sources macOS compiles. Built
// where the real Metal backend is not, so every test runs the shaders.
#include <vector>

#include "../common/backend.h"
#include "../common/dtype.h"
#include "emulated_ops.h"
#include "no_kernel.h"
#include "planner.h"

namespace onebit {
namespace metal {

namespace {

// Kernels run in the output dtype: widen other inputs to it (always exact,
// the output dtype being the promotion of x and scales).
const void* in_dtype(const ArrayRef& a, DType t, std::vector<unsigned char>& buffer) {
  if (a.dtype == t || a.data == nullptr) return a.data;
  buffer.resize(static_cast<std::size_t>(a.size()) * dtype_size(t));
  convert(a.data, a.dtype, buffer.data(), t, a.size());
  return buffer.data();
}

void run(const MatmulPlan& p, void* out) {
  const std::size_t out_bytes =
      static_cast<std::size_t>(p.batch.count * p.M * p.N) * dtype_size(p.out_dtype);
  if (matmul_without_kernel(p, out, out_bytes)) return;
  const DType t = p.out_dtype;
  std::vector<unsigned char> xbuf, sbuf, bbuf;
  const void* x = in_dtype(p.x, t, xbuf);
  const void* scales = in_dtype(p.scales, t, sbuf);
  const void* biases = p.biases.data ? in_dtype(p.biases, t, bbuf) : scales;

  OperandMemory m;
  m.wq = p.wq.data;
  m.scales = scales;
  m.biases = biases;
  m.x = x;
  m.y = out;
  const std::vector<std::int64_t> strides = batch_strides(p.batch);
  m.batch_shape = p.batch.shape.data();
  m.batch_strides = strides.data();
  DeviceCaps caps;  // no NAX hardware here: NAX kernels run when PYONEBIT_NAX=on
  caps.nax_policy = nax_policy_from_env();
  run_emulated(plan_matmul(p, caps), m);
}

bool always() { return true; }

}  // namespace

const Backend& emulated_backend() {
  static const Backend b{"metal-emulated", always, run};
  return b;
}

}  // namespace metal
}  // namespace onebit

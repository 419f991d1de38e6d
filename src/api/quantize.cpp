// The public quantize and dequantize (onebit.h): checked here (the checks
// live in plan.cpp), run by the scalar reference, which defines the format
// bit for bit with MLX.
#include "../common/checks.h"
#include "../cpu/reference.h"

namespace onebit {

void quantize(const QuantizePlan& plan, std::uint32_t* wq, void* scales, void* biases) {
  check_quantize_call(plan, biases);
  cpu::reference_quantize(plan, wq, scales, biases);
}

void dequantize(const DequantizePlan& plan, void* out) { cpu::reference_dequantize(plan, out); }

}  // namespace onebit

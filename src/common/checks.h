// Argument checks shared by the public operations (defined in plan.cpp).
#pragma once

#include <string>

#include "onebit/onebit.h"

namespace onebit {

// Throw ValueError / TypeError "[op] msg": every public error names its
// operation this way.
[[noreturn]] void value_error(const char* op, const std::string& msg);
[[noreturn]] void type_error(const char* op, const std::string& msg);

// ValueError "[op] <name> ..." if a has a negative dimension, or no data
// but elements.
void check_array(const ArrayRef& a, const char* op, const char* name);

// a's dtype for messages: the caller's label for an unsupported one.
std::string dtype_of(const ArrayRef& a);

// ValueError "[op] ..." unless bits and group_size are supported and the
// mode fits the bits.
void check_spec(const QuantSpec& spec, const char* op);

// plan_dequantize with op naming the caller in its messages: QuantizedLinear
// checks its weight (wq, scales, biases) by the same rules, in its own name.
DequantizePlan plan_dequantize_for(const char* op, const ArrayRef& wq, const ArrayRef& scales,
                                   const ArrayRef* biases, const QuantSpec& spec,
                                   const DType* out_dtype);

// ValueError "[quantize] ..." unless a quantize of `plan` can write its
// outputs (biases is required in affine mode) and every element of w is
// finite: what every quantize entry (the CPU reference, the emulated Metal
// kernel, which cannot raise) checks before it writes anything.
void check_quantize_call(const QuantizePlan& plan, const void* biases);

// ValueError "[quantized_matmul] ..." unless the backend named `backend` can
// run the plan: interleaved16 weights run on the "cpu" backend only.
void check_backend_for(const MatmulPlan& plan, const std::string& backend);

}  // namespace onebit

// Validation of a QuantSpec, shared by every operation that takes one.
#pragma once

#include "onebit/onebit.h"

namespace onebit {

// ValueError "[op] ..." unless bits and group_size are supported and the
// mode fits the bits.
void check_spec(const QuantSpec& spec, const char* op);

}  // namespace onebit

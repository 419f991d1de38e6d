// quantize and dequantize: instantiations only; the bodies are in quantize.h.
#include "quantize.h"
#include "instantiate.h"

ONEBIT_INSTANTIATE_ALL(quantize)
ONEBIT_INSTANTIATE_ALL(dequantize)

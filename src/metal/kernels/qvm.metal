// Vector-matrix kernels (transpose=False, M = 1): instantiations only; the bodies are in qvm.h.
#include "qvm.h"
#include "instantiate.h"

ONEBIT_INSTANTIATE_ALL(qvm)
ONEBIT_INSTANTIATE_ALL(qvm_split_k)

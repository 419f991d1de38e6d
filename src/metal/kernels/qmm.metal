// Matrix-matrix kernels (M > 1): instantiations only; the bodies are in qmm.h.
#include "qmm.h"
#include "instantiate.h"

ONEBIT_INSTANTIATE_ALL(qmm_t)
ONEBIT_INSTANTIATE_ALL(qmm_n)

// Matrix-vector kernels (transpose=True, M = 1): instantiations only; the bodies are in qmv.h.
#include "qmv.h"
#include "instantiate.h"

ONEBIT_INSTANTIATE_ALL(qmv_quad)
ONEBIT_INSTANTIATE_ALL(qmv_fast)
ONEBIT_INSTANTIATE_ALL(qmv)

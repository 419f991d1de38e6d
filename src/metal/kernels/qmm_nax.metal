// qmm_t_nax instantiations (bodies in qmm_nax.h), for half and bfloat only:
// the tensor ops take 16-bit operands. Compiled where Metal 4 tensor ops
// exist (macOS 26 SDKs define __HAVE_TENSOR__) and by the emulator.
#include <metal_stdlib>

#if defined(__HAVE_TENSOR__) || defined(ONEBIT_EMULATOR_REGISTER)
#include "qmm_nax.h"
#include "instantiate.h"

#define ONEBIT_FOR_EACH_TENSOR_DTYPE(X, ...) X(__VA_ARGS__, half, float16) X(__VA_ARGS__, bfloat, bfloat16)

ONEBIT_FOR_EACH_TENSOR_DTYPE(ONEBIT_INSTANTIATE_DTYPE, qmm_t_nax)
#endif

// Stand-in for MetalPerformancePrimitives under the emulator (matmul2d only).
#pragma once
#include "../../msl_shim.h"
#include "../../msl_tensor.h"

// The kernels of kernels/qmm.metal, compiled as C++ for the "metal-emulated"
// backend (build_tools/sources.py: emulator_sources).
#include "kernels/qmm.metal"

// The kernels of kernels/qmv.metal, compiled as C++ for the "metal-emulated"
// backend (build_tools/sources.py: emulator_sources).
#include "kernels/qmv.metal"

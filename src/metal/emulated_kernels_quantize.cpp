// The kernels of kernels/quantize.metal, compiled as C++ for the "metal-emulated"
// backend (build_tools/sources.py: emulator_sources).
#include "kernels/quantize.metal"

// The kernels of kernels/qvm.metal, compiled as C++ for the "metal-emulated"
// backend (build_tools/sources.py: emulator_sources).
#include "kernels/qvm.metal"

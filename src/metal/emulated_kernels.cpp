// The Metal kernels compiled as C++ for the "metal-emulated" backend: the very
// .metal files macOS compiles, built with src/metal/emulator/include on the
// include path so <metal_stdlib> is the emulator's shim; each instantiation
// registers itself in the emulator's kernel table (kernels/instantiate.h).
#include "kernels/qmm.metal"
#include "kernels/qmv.metal"
#include "kernels/quantize.metal"
#include "kernels/qvm.metal"

// The Metal kernels compiled as C++ for the "metal-emulated" backend: the very
// .metal files macOS compiles, built with src/metal/emulator/include on the
// include path so <metal_stdlib> is the emulator's shim; each instantiation
// registers itself in the emulator's kernel table (kernels/instantiate.h).
// Built as C++20 (setup.py): the Metal 4 tensor ops of the NAX kernels take
// their descriptor as a class-type template argument.
#include "kernels/qmm.metal"
#include "kernels/qmm_nax.metal"
#include "kernels/qmv.metal"
#include "kernels/quantize.metal"
#include "kernels/qvm.metal"

// Instantiation of kernel templates under their host names
// `<kernel>_<dtype>_gs_<group_size>_b_<bits>[_sym]` (the planner builds the
// same strings in planner.cpp kernel_name()). A .metal file includes the
// kernel's header and this one, then says ONEBIT_INSTANTIATE_ALL(kernel).
//
// The hook: ONEBIT_INSTANTIATE_KERNEL(name, func, T, group_size, bits, symmetric)
// is called once per instantiation with `name` a string literal and the rest
// the template arguments of `func`. Metal gets an explicit instantiation with
// [[host_name]]. Under the emulator (its shim defines
// ONEBIT_EMULATOR_REGISTER) each instantiation is registered in the
// emulator's kernel table instead. A build may also define the macro itself
// before including a .metal file.
#pragma once

#include "../../common/format_values.h"

#if !defined(ONEBIT_INSTANTIATE_KERNEL) && defined(ONEBIT_EMULATOR_REGISTER)
// ONEBIT_EMULATOR_REGISTER names its registrar after __LINE__, and one
// ONEBIT_INSTANTIATE_ALL line registers hundreds of kernels: each goes into a
// namespace of its own.
#define ONEBIT_INSTANTIATE_KERNEL(name, func, T, group_size, bits, symmetric) \
  namespace ONEBIT_EMU_CONCAT(onebit_instance_, __COUNTER__) {               \
  ONEBIT_EMULATOR_REGISTER(name, func<T, group_size, bits, symmetric>)       \
  }
#endif

#ifndef ONEBIT_INSTANTIATE_KERNEL
#define ONEBIT_INSTANTIATE_KERNEL(name, func, T, group_size, bits, symmetric) \
  template [[host_name(name)]] [[kernel]] decltype(func<T, group_size, bits, symmetric>)   \
      func<T, group_size, bits, symmetric>;
#endif

// Every kernel runs in each float dtype: X(args..., MSL type, dtype name).
// bfloat exists from Metal 3.1 (macOS 14), which defines __HAVE_BFLOAT__;
// compiled at 3.0 (macOS 13) the library has no bfloat16 kernels, and the
// host's planner knows it (the emulator, being C++, has them all).
#if defined(__HAVE_BFLOAT__) || defined(ONEBIT_EMULATOR_REGISTER)
#define ONEBIT_FOR_EACH_DTYPE(X, ...) \
  X(__VA_ARGS__, float, float32) X(__VA_ARGS__, half, float16) X(__VA_ARGS__, bfloat, bfloat16)
#else
#define ONEBIT_FOR_EACH_DTYPE(X, ...) X(__VA_ARGS__, float, float32) X(__VA_ARGS__, half, float16)
#endif

#define ONEBIT_KERNEL_NAME(func, tname, gs, bits, suffix) \
  #func "_" #tname "_gs_" #gs "_b_" #bits suffix

#define ONEBIT_INSTANTIATE_AFFINE(func, T, tname, gs, bits) \
  ONEBIT_INSTANTIATE_KERNEL(ONEBIT_KERNEL_NAME(func, tname, gs, bits, ""), func, T, gs, bits, false)

// Symmetric mode exists at 1 bit only (plan.cpp check_spec).
#define ONEBIT_INSTANTIATE_GROUP_SIZE(func, T, tname, gs)                 \
  ONEBIT_FOR_EACH_BITS(ONEBIT_INSTANTIATE_AFFINE, func, T, tname, gs)     \
  ONEBIT_INSTANTIATE_KERNEL(ONEBIT_KERNEL_NAME(func, tname, gs, 1, "_sym"), func, T, gs, 1, true)

#define ONEBIT_INSTANTIATE_DTYPE(func, T, tname) \
  ONEBIT_FOR_EACH_GROUP_SIZE(ONEBIT_INSTANTIATE_GROUP_SIZE, func, T, tname)

#define ONEBIT_INSTANTIATE_ALL(func) ONEBIT_FOR_EACH_DTYPE(ONEBIT_INSTANTIATE_DTYPE, func)

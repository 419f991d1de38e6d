// What the Metal compiler itself provides before any header is read: the
// address-space keywords and the builtin scalar types. Force-included
// (-include) by tests/test_msl_strict.py; kernels never include it.
//
// Written for pyonebit's strict MSL check from Apple's Metal Shading Language
// Specification (version 3.2, and the Metal 4 additions) -- never from
// pyonebit's emulator (src/metal/emulator/), which this check must not trust.
//
// Two configurations:
//  * C++ (the strict pass, clang++ -x c++): the four address spaces of MSL
//    spec section 4 ("Address Spaces": device, constant, thread,
//    threadgroup) are distinct clang address spaces. A pointer or reference in
//    one never converts to another, and `thread` is the default (generic)
//    space, so an unqualified pointer cannot receive device, constant or
//    threadgroup memory -- exactly MSL's rule (spec 4.0: "pointers ... must be
//    declared with an address space attribute" and no conversion between
//    address spaces exists).
//  * C++ for OpenCL (the subset pass, -x clcpp): only the language subset is
//    checked there (no double, virtual, function pointers, exceptions,
//    new/delete); address spaces are the first pass's job and vanish here.
#pragma once

#ifndef __METAL_VERSION__
#error "the strict MSL check defines __METAL_VERSION__ (300, 310, 320 or 400)"
#endif

// Feature macros as Apple's compiler sets them: bfloat from Metal 3.1,
// tensors (Metal 4 on macOS 26) from 4.0.
#if defined(__HAVE_BFLOAT__) && __METAL_VERSION__ < 310
#error "__HAVE_BFLOAT__ needs Metal 3.1"
#endif
#if defined(__HAVE_TENSOR__) && __METAL_VERSION__ < 400
#error "__HAVE_TENSOR__ needs Metal 4"
#endif

#if defined(__OPENCL_CPP_VERSION__)
#define MSL_STRICT_SUBSET_PASS 1
#define device
#define constant
#define thread
#define threadgroup
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#else
// MSL spec 4.1 device, 4.2 constant, 4.3 thread, 4.4 threadgroup. Numbers are
// our choice; `thread` is clang's default space so every unqualified C++
// pointer is a thread pointer, as in MSL.
#define device __attribute__((address_space(1)))
#define constant __attribute__((address_space(2)))
#define threadgroup __attribute__((address_space(3)))
#define thread
#endif

// Builtin scalar types (MSL spec 2.1, Table 2.1 "Metal scalar data types").
// half is a 16-bit IEEE float with its own arithmetic: clang's _Float16 (the
// strict pass targets arm64, where _Float16 is arithmetic). bfloat (spec 2.1,
// "bfloat" since Metal 3.1; the compiler defines __HAVE_BFLOAT__) is a
// distinct 16-bit float type that converts implicitly to and from float;
// __fp16 stands in (arithmetic promotes to float).
#if !defined(MSL_STRICT_SUBSET_PASS)
typedef _Float16 half;
#endif
#if defined(__HAVE_BFLOAT__) && !defined(MSL_STRICT_SUBSET_PASS)
typedef __fp16 bfloat;
#elif defined(__HAVE_BFLOAT__)
// In OpenCL mode __fp16 is half itself; bfloat needs a type of its own.
struct bfloat {
  bfloat() = default;
  bfloat(float x);
  operator float() const;
};
#endif
typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;

// MSL's explicit kernel instantiation, `template [[host_name("name")]]
// [[kernel]] decltype(f<...>) f<...>;` ([spec] 5.1.1 "Compute function
// attributes"/host_name; [mlx] utils.h instantiate_kernel), puts attributes
// where upstream clang allows none. The test rewrites that one spelling to
// MSL_STRICT_HOST_NAME(name) template ..., and this checks that the host
// name is a non-empty string literal.
#define MSL_STRICT_HOST_NAME(name) \
  static_assert(sizeof(name "") > 1, "[[host_name]] takes a non-empty string literal");

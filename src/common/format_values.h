// The supported values of the packed format, as preprocessor lists: the one
// definition read by C++ (format.h builds its validation tables from them)
// and by the Metal shaders (kernels/instantiate.h instantiates one kernel per
// value). Pure preprocessor, so it is valid MSL and valid C++.
//
// Each list calls X(args..., value) once per value; the leading arguments let
// lists nest (dtype x group size x bits) without a macro per combination.
#pragma once

#define ONEBIT_FOR_EACH_BITS(X, ...) \
  X(__VA_ARGS__, 1) X(__VA_ARGS__, 2) X(__VA_ARGS__, 3) X(__VA_ARGS__, 4) \
  X(__VA_ARGS__, 5) X(__VA_ARGS__, 6) X(__VA_ARGS__, 8)

#define ONEBIT_FOR_EACH_GROUP_SIZE(X, ...) X(__VA_ARGS__, 32) X(__VA_ARGS__, 64) X(__VA_ARGS__, 128)

// The floor applied to the affine scale so a constant group stays finite.
#define ONEBIT_SCALE_FLOOR 1e-7f

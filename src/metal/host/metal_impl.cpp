// The one translation unit that instantiates metal-cpp's private symbols
// (selectors, class lookups, string constants). Every other host file only
// includes the headers; defining these macros twice would duplicate symbols.
#ifndef ONEBIT_WITH_METAL
#error "src/metal/host is built only with ONEBIT_WITH_METAL (macOS, see setup.py)"
#endif

#define NS_PRIVATE_IMPLEMENTATION
#define MTL_PRIVATE_IMPLEMENTATION
#define CA_PRIVATE_IMPLEMENTATION
#include <Foundation/Foundation.hpp>
#include <Metal/Metal.hpp>
#include <QuartzCore/QuartzCore.hpp>

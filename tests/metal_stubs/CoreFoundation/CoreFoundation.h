// Stub: the CoreFoundation names metal-cpp uses. Like the real header it
// brings in <math.h> (INFINITY) and libdispatch (the real one through
// CFStream.h); metal-cpp relies on both.
#pragma once
#include <dispatch/dispatch.h>
#include <math.h>
#include <stdint.h>
typedef double CFTimeInterval;
typedef const struct __CFString* CFStringRef;
extern "C" CFStringRef __CFStringMakeConstantString(const char* cStr);

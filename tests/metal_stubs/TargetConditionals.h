// Stub: the compile check stands in for a macOS build.
#pragma once
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0

// Stub: an opaque IOSurface handle.
#pragma once
typedef struct __IOSurface* IOSurfaceRef;

// Stub: CGSize/CGFloat for QuartzCore's CAMetalLayer.
#pragma once
typedef double CGFloat;
struct CGSize {
  CGFloat width;
  CGFloat height;
};
typedef struct CGSize CGSize;

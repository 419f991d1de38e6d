// Switching between fibers (one per emulated GPU thread) on one CPU thread.
//
// glibc's swapcontext saves and restores the signal mask with a system call
// on every switch (about 1 us); the emulator switches at every collective of
// every emulated thread, so on x86-64 and aarch64 Linux a few instructions
// that save the callee-saved registers and swap stack pointers do the job
// instead (about 30x faster). Elsewhere, or with ONEBIT_EMU_UCONTEXT defined
// (e.g. for sanitizers that understand swapcontext), ucontext is used.
#pragma once

#include <cstddef>

#if !defined(ONEBIT_EMU_UCONTEXT) && defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#define ONEBIT_EMU_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace onebit {
namespace metal {
namespace emu {

struct FiberContext {
#ifdef ONEBIT_EMU_ASM_SWITCH
  void* sp = nullptr;  // saved stack pointer; callee-saved registers sit on that stack
#else
  ucontext_t uc;
#endif
};

// Makes `fiber` start running entry() on the given stack at its first switch.
// entry must never return: it ends by switching away for good.
void prepare_fiber(FiberContext& fiber, void* stack, std::size_t size, void (*entry)());

// Saves the running context into `from` and resumes `to`.
void switch_fiber(FiberContext& from, FiberContext& to);

}  // namespace emu
}  // namespace metal
}  // namespace onebit

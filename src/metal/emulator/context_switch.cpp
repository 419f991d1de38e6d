#include "context_switch.h"

#include <cstdint>
#include <cstring>

namespace onebit {
namespace metal {
namespace emu {

#ifdef ONEBIT_EMU_ASM_SWITCH

// onebit_emu_switch(void** save_sp, void* load_sp): push the callee-saved
// registers of the ABI on the current stack, store the stack pointer in
// *save_sp, load load_sp, pop the registers saved there and return into
// that context.
extern "C" void onebit_emu_switch(void** save_sp, void* load_sp);

#if defined(__x86_64__)
// System V: rbx, rbp, r12-r15 are callee-saved; the return address is on the stack.
asm(R"(
  .text
  .globl onebit_emu_switch
  .type onebit_emu_switch, @function
onebit_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size onebit_emu_switch, .-onebit_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");
constexpr std::size_t kSavedWords = 6;  // registers popped before `ret`

void prepare_fiber(FiberContext& fiber, void* stack, std::size_t size, void (*entry)()) {
  auto top = (reinterpret_cast<std::uintptr_t>(stack) + size) & ~std::uintptr_t(15);
  auto* sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                          // entry's (never used) return address: rsp % 16 == 8 at entry
  *--sp = reinterpret_cast<void*>(entry);   // where the first switch's `ret` goes
  for (std::size_t i = 0; i < kSavedWords; ++i) *--sp = nullptr;
  fiber.sp = sp;
}

#elif defined(__aarch64__)
// AAPCS64: x19-x28, fp (x29), lr (x30) and d8-d15 are callee-saved.
asm(R"(
  .text
  .globl onebit_emu_switch
  .type onebit_emu_switch, %function
onebit_emu_switch:
  sub sp, sp, #160
  stp x19, x20, [sp, #0]
  stp x21, x22, [sp, #16]
  stp x23, x24, [sp, #32]
  stp x25, x26, [sp, #48]
  stp x27, x28, [sp, #64]
  stp x29, x30, [sp, #80]
  stp d8, d9, [sp, #96]
  stp d10, d11, [sp, #112]
  stp d12, d13, [sp, #128]
  stp d14, d15, [sp, #144]
  mov x9, sp
  str x9, [x0]
  mov sp, x1
  ldp x19, x20, [sp, #0]
  ldp x21, x22, [sp, #16]
  ldp x23, x24, [sp, #32]
  ldp x25, x26, [sp, #48]
  ldp x27, x28, [sp, #64]
  ldp x29, x30, [sp, #80]
  ldp d8, d9, [sp, #96]
  ldp d10, d11, [sp, #112]
  ldp d12, d13, [sp, #128]
  ldp d14, d15, [sp, #144]
  add sp, sp, #160
  ret
  .size onebit_emu_switch, .-onebit_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

void prepare_fiber(FiberContext& fiber, void* stack, std::size_t size, void (*entry)()) {
  auto top = (reinterpret_cast<std::uintptr_t>(stack) + size) & ~std::uintptr_t(15);
  auto* frame = reinterpret_cast<void**>(top - 160);  // the 160-byte save area, zeroed
  std::memset(frame, 0, 160);
  frame[11] = reinterpret_cast<void*>(entry);  // x30 (lr): where `ret` goes
  fiber.sp = frame;
}
#endif

void switch_fiber(FiberContext& from, FiberContext& to) { onebit_emu_switch(&from.sp, to.sp); }

#else  // ucontext

void prepare_fiber(FiberContext& fiber, void* stack, std::size_t size, void (*entry)()) {
  getcontext(&fiber.uc);
  fiber.uc.uc_stack.ss_sp = stack;
  fiber.uc.uc_stack.ss_size = size;
  fiber.uc.uc_link = nullptr;  // entry never returns
  makecontext(&fiber.uc, entry, 0);
}

void switch_fiber(FiberContext& from, FiberContext& to) { swapcontext(&from.uc, &to.uc); }

#endif

}  // namespace emu
}  // namespace metal
}  // namespace onebit

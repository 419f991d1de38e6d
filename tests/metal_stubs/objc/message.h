// Stub: the message-send entry points metal-cpp casts to typed function
// pointers (their real prototypes are also `void f(void)`).
#pragma once
#include <objc/runtime.h>
extern "C" {
void objc_msgSend(void);
void objc_msgSend_stret(void);
void objc_msgSend_fpret(void);
}

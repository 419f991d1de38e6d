// Stub of libdispatch as C++ sees it without Objective-C: dispatch objects
// are opaque structs deriving from dispatch_object_s, so every handle converts
// to dispatch_object_t as in the real <dispatch/object.h>.
#pragma once
#include <stddef.h>
struct dispatch_object_s {};
typedef struct dispatch_object_s* dispatch_object_t;
typedef struct dispatch_queue_s : public dispatch_object_s {}* dispatch_queue_t;
typedef struct dispatch_data_s : public dispatch_object_s {}* dispatch_data_t;
typedef void (^dispatch_block_t)(void);
#define DISPATCH_DATA_DESTRUCTOR_DEFAULT NULL
extern "C" {
dispatch_data_t dispatch_data_create(const void* buffer, size_t size, dispatch_queue_t queue,
                                     dispatch_block_t destructor);
void dispatch_release(dispatch_object_t object);
}

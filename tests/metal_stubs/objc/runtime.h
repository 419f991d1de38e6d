// Stub of the Objective-C runtime names metal-cpp uses (declarations only).
// objc_object must be complete: NS::Object derives from it.
#pragma once
typedef struct objc_class* Class;
struct objc_object {
  Class isa;
};
typedef struct objc_object* id;
typedef struct objc_selector* SEL;
class Protocol;
extern "C" {
SEL sel_registerName(const char* name);
Class objc_lookUpClass(const char* name);
Protocol* objc_getProtocol(const char* name);
}

// The fake behind fake_metal.h. metal-cpp calls objc_msgSend through function
// pointers cast to each method's exact signature; this file receives those
// calls as one variadic function. On x86-64 SysV that is sound for the
// arguments used here (pointers, integers, and structs over 16 bytes, which
// travel in memory either way) but not for float arguments (none occur).
// Selectors are interned C strings; objects are C++ objects with a manual
// reference count, and autoreleased objects go to a per-thread pool stack,
// which is how leaks and missing pools become visible.
#include "fake_metal.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <unistd.h>

namespace fake {
namespace {

std::recursive_mutex& lock() {
  static std::recursive_mutex m;
  return m;
}

struct Size3 {  // MTL::Size / NS::OperatingSystemVersion layout: 3 x 64-bit
  std::uint64_t a, b, c;
};

struct Obj {
  std::string cls;
  int refs = 1;
  explicit Obj(std::string c) : cls(std::move(c)) {}
  virtual ~Obj() = default;
};
struct Str : Obj {
  std::string text;
  explicit Str(std::string t) : Obj("NSString"), text(std::move(t)) {}
};
struct Err : Obj {
  Str* description;
  explicit Err(const std::string& t) : Obj("NSError"), description(new Str(t)) {}
};
struct Buffer : Obj {
  char* contents;
  std::size_t length;
  bool no_copy;
  std::vector<char> owned;
  Buffer(char* p, std::size_t n, bool nc) : Obj("MTLBuffer"), contents(p), length(n), no_copy(nc) {}
  ~Buffer() override;
};
struct Named : Obj {  // MTLFunction, MTLComputePipelineState: the kernel name
  std::string name;
  Named(const char* cls, std::string n) : Obj(cls), name(std::move(n)) {}
};
struct Options : Obj {  // MTLCompileOptions
  unsigned long language = 0;  // 0: not set
  Options() : Obj("MTLCompileOptions") {}
};
struct Library : Obj {
  std::string text;
  explicit Library(std::string t) : Obj("MTLLibrary"), text(std::move(t)) {}
};
struct CommandBuffer : Obj {
  std::vector<Dispatched> work;  // ended encoders
  int open_encoders = 0;
  int status = 0;
  CommandBuffer() : Obj("MTLCommandBuffer") {}
};
struct Encoder : Obj {
  CommandBuffer* owner;
  Dispatched d;
  explicit Encoder(CommandBuffer* cb) : Obj("MTLComputeCommandEncoder"), owner(cb) {}
};
struct Pool : Obj {
  std::vector<Obj*> objects;
  Pool() : Obj("NSAutoreleasePool") {}
};

Kernel g_kernel = nullptr;
Counters g_counters;
std::vector<Dispatched> g_dispatched;
thread_local std::vector<Pool*> t_pools;

Buffer::~Buffer() { --g_counters.live_buffers; }

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

[[noreturn]] void unhandled(const Obj* self, const char* sel) {
  std::fprintf(stderr, "fake metal: unhandled selector %s on %s\n", sel, self ? self->cls.c_str() : "nil");
  std::abort();
}

void release(Obj* o) {
  if (o != nullptr && --o->refs == 0) delete o;
}

Obj* autoreleased(Obj* o) {
  if (t_pools.empty())
    ++g_counters.autoreleased_without_pool;
  else
    t_pools.back()->objects.push_back(o);
  return o;
}

Buffer* new_buffer(std::size_t n) {
  auto* b = new Buffer(nullptr, n, false);
  b->owned.assign(n, 0);
  b->contents = b->owned.data();
  ++g_counters.live_buffers;
  return b;
}

// Metal's bytesNoCopy contract: page-aligned start, whole pages.
Buffer* wrap(void* p, std::size_t n) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (config().refuse_nocopy || reinterpret_cast<std::uintptr_t>(p) % page != 0 || n % page != 0 || n == 0)
    return nullptr;
  ++g_counters.live_buffers;
  return new Buffer(static_cast<char*>(p), n, true);
}

Obj* string_obj(const std::string& s) { return autoreleased(new Str(s)); }

// MTL::LanguageVersion: (major << 16) | minor.
unsigned long language(int major, int minor) { return (static_cast<unsigned long>(major) << 16) | minor; }

// The lines of a fake source that a compile at `lang` keeps (see fake_metal.h).
std::string preprocess(const std::string& text, unsigned long lang) {
  std::string out;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    const std::size_t at = line.find('@');
    int major = 0, minor = 0;
    if (at == std::string::npos || std::sscanf(line.c_str() + at, "@%d.%d", &major, &minor) != 2 ||
        lang >= language(major, minor))
      out += line + "\n";
    begin = end + 1;
  }
  return out;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void commit(CommandBuffer* cb) {
  if (cb->open_encoders != 0) unhandled(cb, "commit (an encoder is still open)");
  for (Dispatched& d : cb->work) {
    ++g_counters.dispatches;
    g_dispatched.push_back(d);
    if (!config().fail_command && g_kernel) g_kernel(d);
  }
  cb->status = config().fail_command ? 5 : 4;  // CommandBufferStatusError : Completed
}

std::uintptr_t send(Obj* self, const std::string& s, va_list ap) {
  auto ptr = [](void* p) { return reinterpret_cast<std::uintptr_t>(p); };
  // NSObject
  if (s == "retain") return ++self->refs, ptr(self);
  if (s == "release") {
    if (auto* pool = dynamic_cast<Pool*>(self)) {  // draining
      for (Obj* o : pool->objects) release(o);
      pool->objects.clear();
      if (t_pools.empty() || t_pools.back() != pool) unhandled(self, "release (pool not innermost)");
      t_pools.pop_back();
    }
    release(self);
    return 0;
  }
  if (s == "autorelease") return ptr(autoreleased(self));
  if (s == "respondsToSelector:") return 1;
  if (s == "init") {
    if (auto* pool = dynamic_cast<Pool*>(self)) t_pools.push_back(pool);
    return ptr(self);
  }
  // Classes
  if (self->cls == "class NSAutoreleasePool" && s == "alloc") return ptr(new Pool);
  if (self->cls == "class MTLCompileOptions" && s == "alloc") return ptr(new Options);
  if (self->cls == "class NSString" && s == "stringWithCString:encoding:") return ptr(string_obj(va_arg(ap, const char*)));
  if (self->cls == "class NSProcessInfo" && s == "processInfo") return ptr(autoreleased(new Obj("NSProcessInfo")));
  if (self->cls == "NSProcessInfo" && s == "isOperatingSystemAtLeastVersion:") {
    Size3 v = va_arg(ap, Size3);
    const Config& c = config();
    return c.os_major > static_cast<int>(v.a) || (c.os_major == static_cast<int>(v.a) && c.os_minor >= static_cast<int>(v.b));
  }
  if (self->cls == "NSString" && s == "UTF8String") return ptr(const_cast<char*>(static_cast<Str*>(self)->text.c_str()));
  if (self->cls == "NSError" && s == "localizedDescription") return ptr(static_cast<Err*>(self)->description);
  if (self->cls == "MTLCompileOptions" && s == "setFastMathEnabled:") {
    g_counters.fast_math = (va_arg(ap, int) & 0xff) != 0;  // a bool: only the low byte is defined
    return 0;
  }
  if (self->cls == "MTLCompileOptions" && s == "setLanguageVersion:") {
    static_cast<Options*>(self)->language = va_arg(ap, unsigned long);
    return 0;
  }
  // Device
  if (self->cls == "MTLDevice") {
    if (s == "supportsFamily:") {
      const long family = va_arg(ap, long);
      return family >= 1001 && family <= 1000 + config().family;
    }
    if (s == "name") return ptr(string_obj("Fake GPU"));
    if (s == "maxThreadgroupMemoryLength") return 32768;
    if (s == "newCommandQueue") return ptr(new Obj("MTLCommandQueue"));
    if (s == "newBufferWithBytesNoCopy:length:options:deallocator:") {
      void* p = va_arg(ap, void*);
      std::size_t n = va_arg(ap, std::size_t);
      (void)va_arg(ap, unsigned long);
      if (va_arg(ap, void*) != nullptr) unhandled(self, "bytesNoCopy with a deallocator");
      return ptr(wrap(p, n));
    }
    if (s == "newBufferWithBytes:length:options:") {
      const void* p = va_arg(ap, const void*);
      std::size_t n = va_arg(ap, std::size_t);
      Buffer* b = new_buffer(n);
      std::memcpy(b->contents, p, n);
      return ptr(b);
    }
    if (s == "newBufferWithLength:options:") return ptr(new_buffer(va_arg(ap, std::size_t)));
    if (s == "newLibraryWithSource:options:error:") {
      Str* text = va_arg(ap, Str*);
      auto* options = va_arg(ap, Options*);
      Obj** error = va_arg(ap, Obj**);
      ++g_counters.source_compiles;
      g_counters.compiles.emplace_back(first_line(text->text), options->language);
      const std::string& fail = config().fail_compile;
      if (fail == "1" || (!fail.empty() && text->text.find(fail) != std::string::npos)) {
        *error = autoreleased(new Err("fake compile error in: " + text->text.substr(0, 40)));
        return 0;
      }
      return ptr(new Library(preprocess(text->text, options->language)));
    }
    if (s == "newLibraryWithData:error:") {
      auto* data = va_arg(ap, std::string*);  // our dispatch_data_t
      Obj** error = va_arg(ap, Obj**);
      ++g_counters.data_loads;
      if (data->rfind("FAKELIB", 0) != 0) {
        *error = autoreleased(new Err("not a metallib"));
        return 0;
      }
      const std::string head = first_line(*data);
      int major = 0, minor = 0;
      const std::size_t min = head.find("min=");
      if (min != std::string::npos && std::sscanf(head.c_str() + min, "min=%d.%d", &major, &minor) == 2 &&
          language(config().os_major, config().os_minor) < language(major, minor)) {
        *error = autoreleased(new Err("fake: metallib needs macOS " + head.substr(min + 4)));
        return 0;
      }
      return ptr(new Library(*data));
    }
    if (s == "newComputePipelineStateWithFunction:error:") {
      ++g_counters.pipelines;
      return ptr(new Named("MTLComputePipelineState", va_arg(ap, Named*)->name));
    }
  }
  if (self->cls == "MTLLibrary" && s == "newFunctionWithName:") {
    const std::string& name = va_arg(ap, Str*)->text;
    if (static_cast<Library*>(self)->text.find(name) == std::string::npos) return 0;
    return ptr(new Named("MTLFunction", name));
  }
  if (self->cls == "MTLComputePipelineState" && s == "maxTotalThreadsPerThreadgroup") return 1024;
  if (self->cls == "MTLComputePipelineState" && s == "staticThreadgroupMemoryLength")
    return config().static_tg_memory;
  if (self->cls == "MTLBuffer" && s == "contents") return ptr(static_cast<Buffer*>(self)->contents);
  if (self->cls == "MTLBuffer" && s == "length") return static_cast<Buffer*>(self)->length;
  // Command submission
  if (self->cls == "MTLCommandQueue" && s == "commandBuffer") return ptr(autoreleased(new CommandBuffer));
  if (auto* cb = dynamic_cast<CommandBuffer*>(self)) {
    if (s == "computeCommandEncoder") {
      ++cb->open_encoders;
      return ptr(autoreleased(new Encoder(cb)));
    }
    if (s == "commit") return commit(cb), 0;
    if (s == "waitUntilCompleted") return 0;
    if (s == "status") return static_cast<std::uintptr_t>(cb->status);
    if (s == "error") return cb->status == 5 ? ptr(autoreleased(new Err("fake GPU fault"))) : 0;
  }
  if (auto* e = dynamic_cast<Encoder*>(self)) {
    Dispatched& d = e->d;
    if (s == "setComputePipelineState:") {
      d.kernel = va_arg(ap, Named*)->name;
      return 0;
    }
    if (s == "setBuffer:offset:atIndex:") {
      auto* b = va_arg(ap, Buffer*);
      Bound bound;
      bound.buffer_id = ptr(b);
      bound.contents = b->contents;
      bound.length = b->length;
      bound.no_copy = b->no_copy;
      bound.offset = va_arg(ap, std::size_t);
      d.buffers[va_arg(ap, unsigned long)] = bound;
      return 0;
    }
    if (s == "setBytes:length:atIndex:") {
      auto* p = va_arg(ap, const std::uint8_t*);
      std::size_t n = va_arg(ap, std::size_t);
      Bound bound;
      bound.bytes.assign(p, p + n);
      bound.contents = reinterpret_cast<char*>(bound.bytes.data());
      bound.length = n;
      d.buffers[va_arg(ap, unsigned long)] = std::move(bound);
      return 0;
    }
    if (s == "setThreadgroupMemoryLength:atIndex:") {
      unsigned long n = va_arg(ap, unsigned long);
      d.tg_memory[va_arg(ap, unsigned long)] = n;
      return 0;
    }
    if (s == "dispatchThreadgroups:threadsPerThreadgroup:") {
      Size3 g = va_arg(ap, Size3), t = va_arg(ap, Size3);
      d.grid[0] = g.a, d.grid[1] = g.b, d.grid[2] = g.c;
      d.threads[0] = t.a, d.threads[1] = t.b, d.threads[2] = t.c;
      return 0;
    }
    if (s == "endEncoding") {
      --e->owner->open_encoders;
      e->owner->work.push_back(d);
      return 0;
    }
  }
  unhandled(self, s.c_str());
}

}  // namespace

const Config& config() {
  static const Config c = [] {
    Config c;
    if (const char* f = std::getenv("FAKE_METAL_FAMILY")) c.family = std::atoi(f);
    if (const char* v = std::getenv("FAKE_METAL_OS")) std::sscanf(v, "%d.%d", &c.os_major, &c.os_minor);
    c.refuse_nocopy = env_flag("FAKE_METAL_REFUSE_NOCOPY");
    if (const char* f = std::getenv("FAKE_METAL_FAIL_COMPILE")) c.fail_compile = f;
    if (const char* m = std::getenv("FAKE_METAL_STATIC_TG_MEMORY")) c.static_tg_memory = std::strtoul(m, nullptr, 10);
    c.fail_command = env_flag("FAKE_METAL_FAIL_COMMAND");
    return c;
  }();
  return c;
}

void set_kernel(Kernel kernel) { g_kernel = kernel; }

Counters counters() {
  std::lock_guard<std::recursive_mutex> guard(lock());
  return g_counters;
}

std::vector<Dispatched> dispatched() {
  std::lock_guard<std::recursive_mutex> guard(lock());
  return g_dispatched;
}

void reset_dispatched() {
  std::lock_guard<std::recursive_mutex> guard(lock());
  g_dispatched.clear();
}

}  // namespace fake

using fake::Obj;

extern "C" {

const char* sel_registerName(const char* name) {
  static std::set<std::string>* names = new std::set<std::string>;  // outlives static init order
  std::lock_guard<std::recursive_mutex> guard(fake::lock());
  return names->insert(name).first->c_str();
}

void* objc_lookUpClass(const char* name) {
  std::lock_guard<std::recursive_mutex> guard(fake::lock());
  static auto* classes = new std::map<std::string, Obj*>;
  Obj*& c = (*classes)[name];
  if (c == nullptr) c = new Obj(std::string("class ") + name);
  return c;
}

void* objc_getProtocol(const char*) { return nullptr; }

std::uintptr_t objc_msgSend(Obj* self, const char* sel, ...) {
  if (self == nullptr) return 0;  // messages to nil return zero, as in Objective-C
  std::lock_guard<std::recursive_mutex> guard(fake::lock());
  va_list ap;
  va_start(ap, sel);
  std::uintptr_t r = fake::send(self, sel, ap);
  va_end(ap);
  return r;
}

void objc_msgSend_stret(fake::Size3* ret, Obj* self, const char* sel, ...) {
  std::lock_guard<std::recursive_mutex> guard(fake::lock());
  if (self->cls == "MTLDevice" && std::strcmp(sel, "maxThreadsPerThreadgroup") == 0) {
    *ret = {1024, 1024, 1024};
    return;
  }
  if (self->cls == "NSProcessInfo" && std::strcmp(sel, "operatingSystemVersion") == 0) {
    *ret = {static_cast<std::uint64_t>(fake::config().os_major), static_cast<std::uint64_t>(fake::config().os_minor), 0};
    return;
  }
  fake::unhandled(self, sel);
}

void objc_msgSend_fpret() { std::abort(); }

void* MTLCreateSystemDefaultDevice() { return new Obj("MTLDevice"); }
void* MTLCopyAllDevices() { std::abort(); }
void* MTLCopyAllDevicesWithObserver(void*, void*) { std::abort(); }
void MTLRemoveDeviceObserver(const void*) { std::abort(); }

// dispatch_data_t is a std::string here.
void* dispatch_data_create(const void* buffer, std::size_t size, void*, void*) {
  return new std::string(static_cast<const char*>(buffer), size);
}
void dispatch_release(void* object) { delete static_cast<std::string*>(object); }

// Blocks runtime symbols referenced by metal-cpp's (unused) block adapters.
void* _NSConcreteStackBlock[32];
void* _NSConcreteGlobalBlock[32];
void _Block_object_assign(void*, const void*, int) { std::abort(); }
void _Block_object_dispose(const void*, int) { std::abort(); }
}

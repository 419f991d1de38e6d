// Calling a Metal kernel compiled as C++: the kernel ABI of
// src/metal/README.md turned into a uniform, type-erased entry point.
//
// A kernel's parameters are its buffers and threadgroup allocations (all
// "slots", in order) followed by four thread-position parameters. The
// invoker casts each slot to the parameter's type: pointers stay pointers,
// `constant T&` parameters become references to the slot's bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "msl_types.h"

namespace onebit {
namespace metal {
namespace emu {

struct ThreadIds {
  ::metal::uint3 tgid;  // [[threadgroup_position_in_grid]]
  ::metal::uint3 lid;   // [[thread_position_in_threadgroup]]
  ::metal::uint simd_gid;  // [[simdgroup_index_in_threadgroup]]
  ::metal::uint simd_lid;  // [[thread_index_in_simdgroup]]
};

using Invoker = void (*)(void* const* slots, const ThreadIds& ids);

struct KernelInfo {
  const char* name;
  Invoker invoke;
  int num_slots;  // buffers + threadgroup allocations
};

void register_kernel(const KernelInfo& info);
const KernelInfo* find_kernel(const std::string& name);  // null if unknown
std::vector<std::string> kernel_names();

namespace detail {

template <class P>
P slot_as(void* slot) {
  if constexpr (std::is_pointer<P>::value) {
    return static_cast<P>(slot);
  } else {
    static_assert(std::is_reference<P>::value,
                  "kernel buffer parameters must be pointers or constant references");
    return *static_cast<std::remove_reference_t<P>*>(slot);
  }
}

template <class F>
struct signature;
template <class... A>
struct signature<void (*)(A...)> {
  static constexpr int num_slots = static_cast<int>(sizeof...(A)) - 4;
  using params = std::tuple<A...>;
};

template <auto Fn, std::size_t... I>
void call(void* const* slots, const ThreadIds& ids, std::index_sequence<I...>) {
  using params = typename signature<decltype(Fn)>::params;
  Fn(slot_as<std::tuple_element_t<I, params>>(slots[I])..., ids.tgid, ids.lid, ids.simd_gid,
     ids.simd_lid);
}

}  // namespace detail

template <auto Fn>
void invoke(void* const* slots, const ThreadIds& ids) {
  constexpr int n = detail::signature<decltype(Fn)>::num_slots;
  static_assert(n >= 0, "a kernel ends with the four thread-position parameters");
  detail::call<Fn>(slots, ids, std::make_index_sequence<n>{});
}

// Registers a kernel at static-initialisation time.
struct Registrar {
  Registrar(const char* name, Invoker invoke, int num_slots) {
    register_kernel({name, invoke, num_slots});
  }
};

// One dispatch: what Metal's dispatchThreadgroups receives.
struct Launch {
  const KernelInfo* kernel = nullptr;
  std::array<std::uint32_t, 3> threadgroups{1, 1, 1};
  std::array<std::uint32_t, 3> threads{1, 1, 1};
  std::vector<void*> buffers;                    // in [[buffer(i)]] order
  std::vector<std::int64_t> threadgroup_memory;  // bytes, in [[threadgroup(j)]] order
};

// Runs every threadgroup of the launch (in parallel across CPU threads),
// each with its threads in lockstep. Throws std::runtime_error on a
// collective mismatch or an exception inside the kernel.
void launch(const Launch& launch);

}  // namespace emu
}  // namespace metal
}  // namespace onebit

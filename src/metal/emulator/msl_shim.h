// Compiles Metal Shading Language kernel sources as C++ (the emulator).
//
// Included through the `metal_stdlib` file next to it, so kernel sources
// keep their `#include <metal_stdlib>`. Maps MSL address spaces away, keeps
// attributes as (ignored) C++ attributes, and implements the collectives on
// top of the lockstep scheduler (lockstep.h). Standard headers are included
// before the keyword macros below, which would otherwise break them.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernel_abi.h"
#include "lockstep.h"
#include "msl_types.h"


namespace metal {

// The call site of a collective, for the lockstep checks.
#define ONEBIT_SITE_PARAMS const char *onebit_file = __builtin_FILE(), int onebit_line = __builtin_LINE()
#define ONEBIT_SITE(op) ::onebit::metal::emu::Site{op, onebit_file, onebit_line}

namespace emu_detail {
namespace emu = ::onebit::metal::emu;

template <class T>
const T& lane_value(const emu::Exchange& ex, int lane) {
  return *static_cast<const T*>(ex.of(lane));
}

// Combines the values of `lanes` (n of them) in the order the collective's
// seeded salt picks (emu::reduction_order): Metal does not specify the order
// of simd_sum and friends, so a kernel must not depend on it.
template <class T, class Op>
T combine(const emu::Exchange& ex, const int* lanes, int n, Op op) {
  int order[emu::kSimdWidth];
  const bool tree = emu::reduction_order(ex.salt, n, order);
  T v[emu::kSimdWidth]{};
  for (int i = 0; i < n; ++i) v[i] = lane_value<T>(ex, lanes[order[i]]);
  if (!tree) {
    T acc = v[0];
    for (int i = 1; i < n; ++i) acc = T(op(acc, v[i]));
    return acc;
  }
  for (int width = n; width > 1;) {  // pairwise, as a butterfly would
    const int half = width / 2;
    for (int i = 0; i < half; ++i) v[i] = T(op(v[2 * i], v[2 * i + 1]));
    if (width % 2) v[half] = v[width - 1];
    width = half + width % 2;
  }
  return v[0];
}

template <class T, class Op>
T reduce(const emu::Exchange& ex, Op op) {
  int lanes[emu::kSimdWidth], n = 0;
  for (int l = 0; l < emu::kSimdWidth; ++l)
    if (ex.is_live(l)) lanes[n++] = l;
  return combine<T>(ex, lanes, n, op);
}

// Reading a lane that has returned (or does not exist) is undefined on a GPU.
template <class T>
T read_lane(const emu::Exchange& ex, int src, const char* op) {
  if (src < 0 || src >= emu::kSimdWidth || !ex.is_live(src))
    throw std::runtime_error(std::string("[metal-emulated] ") + op + " reads inactive lane " +
                             std::to_string(src) + " (from lane " + std::to_string(ex.lane) + ")");
  return lane_value<T>(ex, src);
}

template <class T>
emu::Exchange deposit(const char* op, const char* file, int line, const T& v) {
  static_assert(std::is_trivially_copyable<T>::value, "collective on a non-trivial type");
  return emu::arrive(emu::Scope::simdgroup, emu::Site{op, file, line}, &v, sizeof(T));
}

}  // namespace emu_detail

// ------------------------------------------------------------------ barriers
enum class mem_flags : unsigned { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };
inline mem_flags operator|(mem_flags a, mem_flags b) {
  return static_cast<mem_flags>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

inline void threadgroup_barrier(mem_flags, ONEBIT_SITE_PARAMS) {
  ::onebit::metal::emu::arrive(::onebit::metal::emu::Scope::threadgroup,
                               ONEBIT_SITE("threadgroup_barrier"), nullptr, 0);
}
inline void simdgroup_barrier(mem_flags, ONEBIT_SITE_PARAMS) {
  emu_detail::deposit("simdgroup_barrier", onebit_file, onebit_line, 0);
}

// ------------------------------------------------------------------ simd reductions
template <class T>
T simd_sum(T v, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("simd_sum", onebit_file, onebit_line, v);
  return emu_detail::reduce<T>(ex, [](const T& a, const T& b) { return a + b; });
}
template <class T>
T simd_max(T v, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("simd_max", onebit_file, onebit_line, v);
  return emu_detail::reduce<T>(ex, [](const T& a, const T& b) { return max(a, b); });
}
template <class T>
T simd_min(T v, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("simd_min", onebit_file, onebit_line, v);
  return emu_detail::reduce<T>(ex, [](const T& a, const T& b) { return min(a, b); });
}

// ------------------------------------------------------------------ simd shuffles
template <class T>
T simd_shuffle(T v, ushort src, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("simd_shuffle", onebit_file, onebit_line, v);
  return emu_detail::read_lane<T>(ex, src, "simd_shuffle");
}
template <class T>
T simd_broadcast(T v, ushort src, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("simd_broadcast", onebit_file, onebit_line, v);
  return emu_detail::read_lane<T>(ex, src, "simd_broadcast");
}
// Lanes whose source falls outside the simdgroup keep their own value.
template <class T>
T simd_shuffle_down(T v, ushort delta, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("simd_shuffle_down", onebit_file, onebit_line, v);
  const int src = ex.lane + delta;
  return src < ::onebit::metal::emu::kSimdWidth ? emu_detail::read_lane<T>(ex, src, "simd_shuffle_down") : v;
}
template <class T>
T simd_shuffle_up(T v, ushort delta, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("simd_shuffle_up", onebit_file, onebit_line, v);
  const int src = ex.lane - delta;
  return src >= 0 ? emu_detail::read_lane<T>(ex, src, "simd_shuffle_up") : v;
}
template <class T>
T simd_shuffle_xor(T v, ushort mask, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("simd_shuffle_xor", onebit_file, onebit_line, v);
  return emu_detail::read_lane<T>(ex, ex.lane ^ mask, "simd_shuffle_xor");
}

// ------------------------------------------------------------------ quad-groups (4 lanes)
template <class T>
T quad_sum(T v, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("quad_sum", onebit_file, onebit_line, v);
  int lanes[4], n = 0;
  for (int l = ex.lane & ~3; l < (ex.lane & ~3) + 4; ++l)
    if (ex.is_live(l)) lanes[n++] = l;
  return emu_detail::combine<T>(ex, lanes, n, [](const T& a, const T& b) { return a + b; });
}
template <class T>
T quad_shuffle_down(T v, ushort delta, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("quad_shuffle_down", onebit_file, onebit_line, v);
  const int q = ex.lane & 3;
  return q + delta < 4 ? emu_detail::read_lane<T>(ex, ex.lane + delta, "quad_shuffle_down") : v;
}
template <class T>
T quad_shuffle_xor(T v, ushort mask, ONEBIT_SITE_PARAMS) {
  auto ex = emu_detail::deposit("quad_shuffle_xor", onebit_file, onebit_line, v);
  return emu_detail::read_lane<T>(ex, (ex.lane & ~3) | ((ex.lane & 3) ^ (mask & 3)),
                                  "quad_shuffle_xor");
}

// ------------------------------------------------------------------ simdgroup_matrix
// An 8x8 tile owned collectively by a simdgroup. How a GPU spreads its
// elements over lanes is implementation-defined and kernels must not depend
// on it, so here every lane holds the whole tile. Each operation is a checked
// collective: all live lanes must call it at the same site with the same
// arguments; the leader lane computes once and the others copy its result.
namespace emu_detail {
struct MatrixElements;
}

template <class T, int Rows, int Cols>
struct simdgroup_matrix {
  static_assert(Rows == 8 && Cols == 8, "the emulator implements 8x8 simdgroup matrices");
  simdgroup_matrix() = default;
  explicit simdgroup_matrix(T v) {
    for (auto& row : e)
      for (auto& x : row) x = v;
  }

 private:
  friend struct emu_detail::MatrixElements;
  T e[Rows][Cols];
};

namespace emu_detail {
// The emulator's access to a tile's elements (private: not Apple's API).
struct MatrixElements {
  template <class M>
  static auto& of(M& m) {
    return m.e;
  }
};
}  // namespace emu_detail

template <class T, int R, int C>
simdgroup_matrix<T, R, C> make_filled_simdgroup_matrix(T v) {
  return simdgroup_matrix<T, R, C>(v);
}

namespace emu_detail {

struct MatrixAccess {
  const volatile void* pointer;
  ulong stride;
  ulong origin_x, origin_y;
  ulong transpose;  // not bool: lanes compare this struct with memcmp, and padding bytes are indeterminate
};

// Verifies every live lane passed the same arguments; returns the exchange. Each
// lane compares its own arguments with the first live lane's (every lane runs this,
// so all are checked, in one pass instead of each lane comparing all 32).
template <class Args>
emu::Exchange uniform(const char* op, const char* file, int line, const Args& args) {
  auto ex = deposit(op, file, line, args);
  const int first = __builtin_ctz(ex.live);  // the caller is live, so live != 0
  if (std::memcmp(ex.of(first), &args, sizeof(Args)) != 0)
    throw std::runtime_error(std::string("[metal-emulated] ") + op +
                             ": lanes passed different arguments (lane " + std::to_string(ex.lane) +
                             " vs lane " + std::to_string(first) + ")");
  return ex;
}

// Element (r, c) of the tile at p: row-major with `stride` elements per row,
// read transposed when asked, offset by origin (x = column, y = row).
inline std::size_t tile_index(const MatrixAccess& a, int r, int c) {
  const ulong row = a.transpose ? a.origin_y + c : a.origin_y + r;
  const ulong col = a.transpose ? a.origin_x + r : a.origin_x + c;
  return row * a.stride + col;
}

}  // namespace emu_detail

template <class T, int R, int C, class U>
void simdgroup_load(simdgroup_matrix<T, R, C>& m, const U* src, ulong elements_per_row = C,
                    ulong2 origin = ulong2(0, 0), bool transpose = false, ONEBIT_SITE_PARAMS) {
  const emu_detail::MatrixAccess a{src, elements_per_row, origin.x, origin.y, transpose};
  emu_detail::uniform("simdgroup_load", onebit_file, onebit_line, a);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) emu_detail::MatrixElements::of(m)[r][c] = T(src[emu_detail::tile_index(a, r, c)]);
}

template <class T, int R, int C, class U>
void simdgroup_store(const simdgroup_matrix<T, R, C>& m, U* dst, ulong elements_per_row = C,
                     ulong2 origin = ulong2(0, 0), bool transpose = false, ONEBIT_SITE_PARAMS) {
  const emu_detail::MatrixAccess a{dst, elements_per_row, origin.x, origin.y, transpose};
  emu_detail::uniform("simdgroup_store", onebit_file, onebit_line, a);
  if (!::onebit::metal::emu::first_in_simdgroup()) return;  // one store of the (identical) tile
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      dst[emu_detail::tile_index(a, r, c)] = static_cast<std::remove_cv_t<U>>(emu_detail::MatrixElements::of(m)[r][c]);
}

// d = a * b + c, products and sums in float32, rounded to d's type at the end.
template <class T, class A, class B, class C, int N>
void simdgroup_multiply_accumulate(simdgroup_matrix<T, N, N>& d, const simdgroup_matrix<A, N, N>& a,
                                   const simdgroup_matrix<B, N, N>& b,
                                   const simdgroup_matrix<C, N, N>& c, ONEBIT_SITE_PARAMS) {
  // Operands are per-lane objects: the check is on the call, the tiles
  // themselves are identical across lanes by construction.
  auto ex = emu_detail::deposit("simdgroup_multiply_accumulate", onebit_file, onebit_line, 0);
  static_assert(sizeof(simdgroup_matrix<T, N, N>) <= ::onebit::metal::emu::kMaxDeposit, "tile size");
  auto* shared = static_cast<simdgroup_matrix<T, N, N>*>(::onebit::metal::emu::shared_result());
  if (::onebit::metal::emu::first_in_simdgroup()) {
    simdgroup_matrix<T, N, N> r;
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) {
        // The order of the k terms is the implementation's: seeded.
        float acc = static_cast<float>(emu_detail::MatrixElements::of(c)[i][j]);
        for (int kk = 0; kk < N; ++kk) {
          const int k = ex.salt & 1u ? N - 1 - kk : kk;
          acc += static_cast<float>(emu_detail::MatrixElements::of(a)[i][k]) *
                 static_cast<float>(emu_detail::MatrixElements::of(b)[k][j]);
        }
        emu_detail::MatrixElements::of(r)[i][j] = T(acc);
      }
    std::memcpy(shared, &r, sizeof(r));
  }
  std::memcpy(&d, shared, sizeof(d));
}

template <class T, class A, class B, int N>
void simdgroup_multiply(simdgroup_matrix<T, N, N>& d, const simdgroup_matrix<A, N, N>& a,
                        const simdgroup_matrix<B, N, N>& b, ONEBIT_SITE_PARAMS) {
  simdgroup_multiply_accumulate(d, a, b, simdgroup_matrix<T, N, N>(T(0)), onebit_file, onebit_line);
}

}  // namespace metal

// Address spaces, defined last so the shim itself is plain C++. Device and
// constant memory are plain memory. Threadgroup memory is `volatile`: the
// one keyword that is both a no-op-ish qualifier before a type and, inside
// `[[threadgroup(0)]]`, a valid (ignored) attribute name; it also keeps the
// compiler from caching threadgroup values in registers across a barrier,
// which is exactly where other emulated threads write them.
#define device
#define constant
#define thread
#define threadgroup volatile

// Registers kernel `fn` under `name` (the emulator's form of MSL's
// `template [[host_name(name)]] [[kernel]] decltype(fn) fn;`).
#define ONEBIT_EMULATOR_REGISTER(name, ...)                                           \
  static ::onebit::metal::emu::Registrar ONEBIT_EMU_CONCAT(onebit_kernel_, __LINE__)( \
      name, &::onebit::metal::emu::invoke<&__VA_ARGS__>,                              \
      ::onebit::metal::emu::detail::signature<decltype(&__VA_ARGS__)>::num_slots);
#define ONEBIT_EMU_CONCAT2(a, b) a##b
#define ONEBIT_EMU_CONCAT(a, b) ONEBIT_EMU_CONCAT2(a, b)

// Metal 4 tensors and the MetalPerformancePrimitives matmul2d tensor op, the
// subset NAX kernels use, for the emulator. Needs C++20 (the op takes its
// descriptor as a class-type template argument, as in MSL).
//
// Semantics follow Apple's documentation (MPPTensorOpsMatMul2d.h), never an
// implementation's lane layout:
//  * a rank-2 tensor is indexed [i0, i1] with i0 the contiguous (column)
//    dimension: an R x C row-major matrix has extents (C, R), strides (1, C);
//  * matmul2d with descriptor (m, n, k, transpose_left, transpose_right)
//    computes the m x n tile C = A B (mode multiply) or C += A B
//    (multiply_accumulate); A is m x k, read as A[row, kk] = left[kk, row]
//    (left[row, kk] when transposed); B is k x n, B[kk, col] = right[col, kk]
//    (right[kk, col] when transposed); C[row, col] = dest[col, row];
//  * reads outside an operand's extents are zero, writes outside are dropped;
//  * a cooperative tensor spreads the destination over the threads of the
//    op's scope in an implementation-defined way. Here the assignment is
//    rotated by a per-threadgroup seed, so a kernel that assumes any
//    particular element-to-thread mapping computes wrong results.
#pragma once

#if __cplusplus < 202002L
#error "the emulated tensor ops need C++20 (class-type template arguments)"
#endif

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "lockstep.h"
#include "msl_types.h"

namespace metal {

template <class T, std::size_t N>
using array = std::array<T, N>;

constexpr int dynamic_extent = -1;
template <class I>
constexpr I dynamic_length_v = I(-1);

template <class I, std::size_t Rank>
struct dextents {
  static_assert(Rank == 2, "the emulator implements rank-2 tensors");
  I e[2];
  constexpr dextents(I e0, I e1) : e{e0, e1} {}
  constexpr I extent(int d) const { return e[d]; }
  static constexpr std::size_t rank() { return Rank; }
};

struct tensor_inline {};
struct tensor_offset {};
struct tensor_handle {};

template <class Elem, class Extents, class Layout = tensor_handle>
struct tensor {
  using element_type = Elem;
  Elem* origin;
  Extents ext;
  int strides[2];

  tensor(Elem* data, Extents e) : origin(data), ext(e), strides{1, int(e.extent(0))} {}
  tensor(Elem* data, Extents e, array<int, 2> s) : origin(data), ext(e), strides{s[0], s[1]} {}

  Extents extents() const { return ext; }

  // The same storage seen from (o0, o1), extents shrunk to what remains.
  tensor<Elem, Extents, tensor_offset> offset(int o0, int o1) const {
    Extents rest(std::max(0, int(ext.extent(0)) - o0), std::max(0, int(ext.extent(1)) - o1));
    return {origin + o0 * strides[0] + o1 * strides[1], rest, {strides[0], strides[1]}};
  }
  tensor<Elem, Extents, tensor_offset> slice(int o0, int o1) const { return offset(o0, o1); }
  template <int E0, int E1>
  tensor<Elem, Extents, tensor_offset> static_slice(int o0, int o1) const {
    auto t = offset(o0, o1);
    if (E0 != dynamic_extent) t.ext.e[0] = std::min<int>(t.ext.e[0], E0);
    if (E1 != dynamic_extent) t.ext.e[1] = std::min<int>(t.ext.e[1], E1);
    return t;
  }

  bool inside(int i0, int i1) const { return i0 < ext.extent(0) && i1 < ext.extent(1); }
  Elem& at(int i0, int i1) const { return origin[i0 * strides[0] + i1 * strides[1]]; }
};

template <int N>
struct execution_simdgroups {
  static constexpr int simdgroups = N;
};

}  // namespace metal

namespace mpp {
namespace tensor_ops {

struct matmul2d_descriptor {
  enum class mode { multiply, multiply_accumulate };
  int m, n, k;
  bool transpose_left, transpose_right, relaxed_precision;
  mode matmul_mode;
  constexpr matmul2d_descriptor(int m_, int n_, int k_ = metal::dynamic_length_v<int>,
                                bool tl = false, bool tr = false, bool relaxed = false,
                                mode md = mode::multiply)
      : m(m_), n(n_), k(k_), transpose_left(tl), transpose_right(tr), relaxed_precision(relaxed),
        matmul_mode(md) {}
};

namespace detail {
namespace emu = ::onebit::metal::emu;

template <class T>
constexpr bool is_tensor_op_input =
    std::is_same<std::remove_cv_t<T>, metal::half>::value ||
    std::is_same<std::remove_cv_t<T>, metal::bfloat>::value;

// Thread t's slot i holds tile element i * threads + (t + rotation) % threads.
inline int tile_element(int slot, int owner, int threads, std::uint32_t rotation) {
  return slot * threads + static_cast<int>((owner + rotation) % threads);
}

}  // namespace detail

// (The shim's address-space macros are live here: no identifier may be
// named device, constant, thread or threadgroup.)
template <class Dest>
Dest* cooperative_of(const volatile void* p) {
  return static_cast<Dest*>(const_cast<void*>(p));
}

// The m x n destination tile of a matmul2d, spread over `Threads` threads.
template <class E, int M, int N, int Threads>
struct cooperative_destination {
  using value_type = E;
  static constexpr int kCapacity = (M * N + Threads - 1) / Threads;
  E slots[kCapacity];
  int owner;  // this thread's index in the op's scope
  std::uint32_t rotation;

  cooperative_destination()
      : owner(detail::emu::thread_index() % Threads), rotation(detail::emu::layout_seed()) {
    for (auto& v : slots) v = E(0);
  }

  static constexpr int capacity() { return kCapacity; }
  int element(int i) const { return detail::tile_element(i, owner, Threads, rotation); }
  bool mask(int i) const { return element(i) < M * N; }
  E& operator[](int i) { return slots[i]; }
  const E& operator[](int i) const { return slots[i]; }
  // (column, row) of slot i in the tile, the tensor index order.
  metal::array<int, 2> multidimensional_indices(int i) const {
    return {element(i) % N, element(i) / N};
  }

  template <class Tensor>
  void load(const Tensor& t) {
    for (int i = 0; i < kCapacity; ++i) {
      if (!mask(i)) continue;
      const auto ix = multidimensional_indices(i);
      slots[i] = t.inside(ix[0], ix[1]) ? E(static_cast<float>(t.at(ix[0], ix[1]))) : E(0);
    }
  }
  template <class Tensor>
  void store(const Tensor& t) const {
    for (int i = 0; i < kCapacity; ++i) {
      if (!mask(i)) continue;
      const auto ix = multidimensional_indices(i);
      if (t.inside(ix[0], ix[1]))
        t.at(ix[0], ix[1]) = static_cast<std::remove_cv_t<typename Tensor::element_type>>(slots[i]);
    }
  }
};

template <class T>
struct is_cooperative : std::false_type {};
template <class E, int M, int N, int T>
struct is_cooperative<cooperative_destination<E, M, N, T>> : std::true_type {};

template <matmul2d_descriptor D, class Scope>
class matmul2d {
  static constexpr int kThreads = Scope::simdgroups * ::onebit::metal::emu::kSimdWidth;

  // What every thread of the scope passes to run(); A and B must agree.
  struct Operand {
    const volatile void* origin;
    long extent0, extent1, stride0, stride1;
  };
  struct RunArgs {
    Operand left, right, dest;  // dest.origin: the tensor, or this thread's cooperative tensor
  };
  template <class Tensor>
  static Operand describe(const Tensor& t) {
    return {t.origin, t.ext.extent(0), t.ext.extent(1), t.strides[0], t.strides[1]};
  }

 public:
  template <class Left, class Right, class Elem, class Coord = int>
  cooperative_destination<Elem, D.m, D.n, kThreads> get_destination_cooperative_tensor() const {
    return {};
  }

  template <class Left, class Right, class Dest>
  void run(Left& left, Right& right, Dest& dest, const char* onebit_file = __builtin_FILE(),
           int onebit_line = __builtin_LINE()) const {
    static_assert(detail::is_tensor_op_input<typename Left::element_type> &&
                      detail::is_tensor_op_input<typename Right::element_type>,
                  "matmul2d operands must be half or bfloat tensors");
    namespace emu = ::onebit::metal::emu;
    if (emu::threads_per_threadgroup() != kThreads)
      throw std::runtime_error("[metal-emulated] matmul2d configured for " +
                               std::to_string(Scope::simdgroups) +
                               " simdgroups, dispatched with " +
                               std::to_string(emu::threads_per_threadgroup()) + " threads");
    RunArgs args{describe(left), describe(right), {}};
    if constexpr (is_cooperative<Dest>::value) {
      args.dest.origin = &dest;
    } else {
      args.dest = describe(dest);
    }
    auto ex = emu::arrive_threadgroup(emu::Site{"matmul2d::run", onebit_file, onebit_line}, &args,
                                      sizeof(args));
    for (int t = 0; t < ex.threads; ++t) {
      if (!ex.live[t]) throw std::runtime_error("[metal-emulated] matmul2d::run: a thread of its scope has returned");
      const auto* other = static_cast<const RunArgs*>(ex.of(t));
      const bool same = std::memcmp(&other->left, &args.left, sizeof(Operand)) == 0 &&
                        std::memcmp(&other->right, &args.right, sizeof(Operand)) == 0 &&
                        (is_cooperative<Dest>::value ||
                         std::memcmp(&other->dest, &args.dest, sizeof(Operand)) == 0);
      if (!same)
        throw std::runtime_error("[metal-emulated] matmul2d::run: threads passed different tensors (thread " +
                                 std::to_string(t) + " vs " + std::to_string(ex.index) + ")");
    }
    if (ex.index != ex.leader()) return;  // the leader computes the whole tile for the scope

    const int k = D.k >= 0 ? D.k : int(D.transpose_left ? left.ext.extent(1) : left.ext.extent(0));
    auto a = [&](int row, int kk) -> float {
      const int i0 = D.transpose_left ? row : kk, i1 = D.transpose_left ? kk : row;
      return left.inside(i0, i1) ? static_cast<float>(left.at(i0, i1)) : 0.0f;
    };
    auto b = [&](int kk, int col) -> float {
      const int i0 = D.transpose_right ? kk : col, i1 = D.transpose_right ? col : kk;
      return right.inside(i0, i1) ? static_cast<float>(right.at(i0, i1)) : 0.0f;
    };
    const bool accumulate = D.matmul_mode == matmul2d_descriptor::mode::multiply_accumulate;
    std::vector<float> tile(static_cast<std::size_t>(D.m) * D.n, 0.0f);
    if constexpr (is_cooperative<Dest>::value) {
      for (int t = 0; t < ex.threads; ++t) {
        const Dest* ct = cooperative_of<Dest>(static_cast<const RunArgs*>(ex.of(t))->dest.origin);
        for (int i = 0; i < Dest::kCapacity; ++i)
          if (ct->mask(i) && accumulate) tile[ct->element(i)] = static_cast<float>(ct->slots[i]);
      }
    } else if (accumulate) {
      for (int r = 0; r < D.m; ++r)
        for (int c = 0; c < D.n; ++c)
          if (dest.inside(c, r)) tile[r * D.n + c] = static_cast<float>(dest.at(c, r));
    }
    for (int r = 0; r < D.m; ++r)
      for (int c = 0; c < D.n; ++c) {
        float acc = tile[r * D.n + c];
        for (int kk = 0; kk < k; ++kk) acc += a(r, kk) * b(kk, c);
        tile[r * D.n + c] = acc;
      }
    if constexpr (is_cooperative<Dest>::value) {
      for (int t = 0; t < ex.threads; ++t) {
        Dest* ct = cooperative_of<Dest>(static_cast<const RunArgs*>(ex.of(t))->dest.origin);
        for (int i = 0; i < Dest::kCapacity; ++i)
          if (ct->mask(i)) ct->slots[i] = typename Dest::value_type(tile[ct->element(i)]);
      }
    } else {
      using Out = std::remove_cv_t<typename Dest::element_type>;
      for (int r = 0; r < D.m; ++r)
        for (int c = 0; c < D.n; ++c)
          if (dest.inside(c, r)) dest.at(c, r) = static_cast<Out>(tile[r * D.n + c]);
    }
  }
};

}  // namespace tensor_ops
}  // namespace mpp

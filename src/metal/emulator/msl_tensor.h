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
//    op's scope in an implementation-defined way, and "not all threads and
//    even all elements within a thread need be valid" (Apple's header).
//    Here the assignment is rotated by a seeded per-threadgroup number and
//    every thread may hold invalid slots (Adversary::extra_capacity), so a
//    kernel that assumes any particular element-to-thread mapping, or skips
//    the valid-element check, computes wrong results;
//  * whether mode::multiply overwrites or adds to its destination is read
//    both ways under different seeds (Adversary::multiply_accumulates): the
//    header's own example says "Assumes C is initialized to zero".
//
// Only Apple's names are public here (tests/test_msl_strict.py compares them
// with the strict stand-ins); the emulator's machinery lives in emu_detail.
#pragma once

#if __cplusplus < 202002L
#error "the emulated tensor ops need C++20 (class-type template arguments)"
#endif

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "lockstep.h"
#include "msl_types.h"

namespace metal {

template <class T, std::size_t N>
using array = std::array<T, N>;

constexpr std::size_t dynamic_extent = static_cast<std::size_t>(-1);

template <class IndexType, std::size_t Rank>
struct dextents {
  static_assert(Rank == 2, "the emulator implements rank-2 tensors");
  constexpr dextents(IndexType e0, IndexType e1) : e_{e0, e1} {}
  constexpr IndexType extent(std::size_t r) const { return e_[r]; }
  static constexpr std::size_t rank() { return Rank; }

 private:
  IndexType e_[2];
};

struct tensor_inline {};
struct tensor_offset {};
struct tensor_handle {};

namespace emu_detail {
struct TensorAccess;
template <class T>
struct CooperativeAccess;
}  // namespace emu_detail

template <class ElementType, class Extents, class Layout = tensor_handle>
struct tensor {
  using element_type = ElementType;

  tensor(ElementType* data, Extents e) : origin_(data), ext_(e), strides_{1, int(e.extent(0))} {}
  tensor(ElementType* data, Extents e, array<int, 2> strides)
      : origin_(data), ext_(e), strides_{strides[0], strides[1]} {}

  Extents extents() const { return ext_; }

  // The same storage seen from (o0, o1), extents shrunk to what remains.
  tensor<ElementType, Extents, tensor_offset> slice(int o0, int o1) const {
    Extents rest(std::max(0, int(ext_.extent(0)) - o0), std::max(0, int(ext_.extent(1)) - o1));
    return {origin_ + o0 * strides_[0] + o1 * strides_[1], rest, {strides_[0], strides_[1]}};
  }
  template <std::size_t E0, std::size_t E1>
  tensor<ElementType, Extents, tensor_offset> static_slice(int o0, int o1) const {
    auto t = slice(o0, o1);
    const int e0 = E0 == dynamic_extent ? int(t.ext_.extent(0)) : std::min<int>(t.ext_.extent(0), int(E0));
    const int e1 = E1 == dynamic_extent ? int(t.ext_.extent(1)) : std::min<int>(t.ext_.extent(1), int(E1));
    t.ext_ = Extents(e0, e1);
    return t;
  }

 private:
  template <class, class, class>
  friend struct tensor;
  friend struct emu_detail::TensorAccess;
  ElementType* origin_;
  Extents ext_;
  int strides_[2];
};

template <int N>
struct execution_simdgroups {};

namespace emu_detail {
namespace emu = ::onebit::metal::emu;

// The emulator's view into a tensor: bounds and element access.
struct TensorAccess {
  template <class Tensor>
  static bool inside(const Tensor& t, int i0, int i1) {
    return i0 >= 0 && i1 >= 0 && i0 < int(t.ext_.extent(0)) && i1 < int(t.ext_.extent(1));
  }
  template <class Tensor>
  static auto& at(const Tensor& t, int i0, int i1) {
    return t.origin_[i0 * t.strides_[0] + i1 * t.strides_[1]];
  }
  template <class Tensor>
  static const volatile void* origin(const Tensor& t) {
    return t.origin_;
  }
  template <class Tensor>
  static int stride(const Tensor& t, int d) {
    return t.strides_[d];
  }
};

template <class Scope>
struct scope_simdgroups;
template <int N>
struct scope_simdgroups<execution_simdgroups<N>> {
  static constexpr int value = N;
};

// The layout of a matmul2d destination tile of M x N elements over the
// `Threads` threads of the op's scope: slot i of thread t holds element
// i * Threads + (t + rotation) % Threads while i < kSlots and that element
// is inside the tile; the other slots (and extra ones) are invalid.
template <int M, int N, int Threads>
struct DestinationLayout {
  static constexpr int kSlots = (M * N + Threads - 1) / Threads;
  static constexpr int kMaxExtra = 2;  // Adversary::extra_capacity < 3
};

template <class T>
struct is_cooperative : std::false_type {};

}  // namespace emu_detail

template <class ElementType, class Extents, class Layout>
struct cooperative_tensor {
  cooperative_tensor()
      : owner_(emu_detail::emu::thread_index() % kThreads),
        rotation_(emu_detail::emu::layout_seed()),
        capacity_(Layout::kSlots + emu_detail::emu::adversary().extra_capacity) {
    // A new cooperative tensor's elements are not defined: NaN (or an
    // arbitrary integer) shows a kernel that reads them before writing.
    for (auto& v : slots_) {
      if constexpr (std::is_integral<ElementType>::value)
        v = ElementType(0x5a5a5a5a);
      else
        v = ElementType(std::numeric_limits<float>::quiet_NaN());
    }
  }

  int get_capacity() const { return capacity_; }
  bool is_valid_element(int i) const { return i >= 0 && i < Layout::kSlots && element(i) < kM * kN; }
  bool get_mask(int i) const { return is_valid_element(i); }
  ElementType& operator[](int i) { return slots_[i]; }
  const ElementType& operator[](int i) const { return slots_[i]; }
  // (column, row) of slot i in the tile, the tensor index order.
  array<int, 2> get_multidimensional_index(int i) const { return {element(i) % kN, element(i) / kN}; }

  template <class Tensor>
  void load(const Tensor& t) {
    using A = emu_detail::TensorAccess;
    for (int i = 0; i < capacity_; ++i) {
      if (!is_valid_element(i)) continue;
      const auto ix = get_multidimensional_index(i);
      slots_[i] = A::inside(t, ix[0], ix[1]) ? ElementType(static_cast<float>(A::at(t, ix[0], ix[1])))
                                             : ElementType(0);
    }
  }
  template <class Tensor>
  void store(const Tensor& t) const {
    using A = emu_detail::TensorAccess;
    using Out = std::remove_cv_t<typename Tensor::element_type>;
    for (int i = 0; i < capacity_; ++i) {
      if (!is_valid_element(i)) continue;
      const auto ix = get_multidimensional_index(i);
      if (A::inside(t, ix[0], ix[1])) A::at(t, ix[0], ix[1]) = static_cast<Out>(slots_[i]);
    }
  }

 private:
  template <class>
  friend struct emu_detail::CooperativeAccess;
  static constexpr int kM = Layout::kM, kN = Layout::kN, kThreads = Layout::kThreads;
  int element(int i) const { return i * kThreads + static_cast<int>((owner_ + rotation_) % kThreads); }

  ElementType slots_[Layout::kSlots + Layout::kMaxExtra];
  int owner_;  // this thread's index in the op's scope
  std::uint32_t rotation_;
  int capacity_;
};

namespace emu_detail {
template <class E, class X, class L>
struct is_cooperative<cooperative_tensor<E, X, L>> : std::true_type {};

// The emulator's view into a cooperative tensor (for matmul2d::run).
template <class Coop>
struct CooperativeAccess {
  static int element(const Coop& c, int i) { return c.element(i); }
  static auto& slot(Coop& c, int i) { return c.slots_[i]; }
  static auto slot(const Coop& c, int i) { return c.slots_[i]; }
};
}  // namespace emu_detail

}  // namespace metal

namespace mpp {
namespace tensor_ops {

struct matmul2d_descriptor {
  enum class mode { multiply, multiply_accumulate };
  int m, n, k;
  bool transpose_left, transpose_right, relaxed_precision;
  mode matmul_mode;
  constexpr matmul2d_descriptor(int m_, int n_, int k_ = static_cast<int>(metal::dynamic_extent),
                                bool tl = false, bool tr = false, bool relaxed = false,
                                mode md = mode::multiply)
      : m(m_), n(n_), k(k_), transpose_left(tl), transpose_right(tr), relaxed_precision(relaxed),
        matmul_mode(md) {}
};

// (The shim's address-space macros are live here: no identifier may be
// named device, constant, thread or threadgroup.)
template <matmul2d_descriptor Descriptor, class Scope>
class matmul2d {
  static constexpr int kThreads =
      metal::emu_detail::scope_simdgroups<Scope>::value * ::onebit::metal::emu::kSimdWidth;
  template <int M, int N>
  struct Layout : metal::emu_detail::DestinationLayout<M, N, kThreads> {
    static constexpr int kM = M, kN = N, kThreads = matmul2d::kThreads;
  };
  using Access = metal::emu_detail::TensorAccess;

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
    return {Access::origin(t), long(t.extents().extent(0)), long(t.extents().extent(1)),
            Access::stride(t, 0), Access::stride(t, 1)};
  }
  template <class T>
  static constexpr bool is_input = std::is_same<std::remove_cv_t<T>, metal::half>::value ||
                                   std::is_same<std::remove_cv_t<T>, metal::bfloat>::value;

 public:
  static constexpr matmul2d_descriptor descriptor = Descriptor;
  using scope = Scope;

  template <class LeftOperandType, class RightOperandType, class ElementType, class CoordType = int>
  metal::cooperative_tensor<ElementType, metal::dextents<CoordType, 2>, Layout<Descriptor.m, Descriptor.n>>
  get_destination_cooperative_tensor() const {
    return {};
  }

  template <class Left, class Right, class Dest>
  void run(Left& left, Right& right, Dest& dest, const char* onebit_file = __builtin_FILE(),
           int onebit_line = __builtin_LINE()) const {
    static_assert(is_input<typename Left::element_type> && is_input<typename Right::element_type>,
                  "the emulator's matmul2d takes half or bfloat operands");
    namespace emu = ::onebit::metal::emu;
    constexpr bool cooperative = metal::emu_detail::is_cooperative<Dest>::value;
    if (emu::threads_per_threadgroup() != kThreads)
      throw std::runtime_error("[metal-emulated] matmul2d configured for " +
                               std::to_string(metal::emu_detail::scope_simdgroups<Scope>::value) +
                               " simdgroups, dispatched with " +
                               std::to_string(emu::threads_per_threadgroup()) + " threads");
    RunArgs args{describe(left), describe(right), {}};
    if constexpr (cooperative) {
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
                        (cooperative || std::memcmp(&other->dest, &args.dest, sizeof(Operand)) == 0);
      if (!same)
        throw std::runtime_error("[metal-emulated] matmul2d::run: threads passed different tensors (thread " +
                                 std::to_string(t) + " vs " + std::to_string(ex.index) + ")");
    }
    if (!emu::first_in_threadgroup()) return;  // one thread computes the whole tile for the scope

    constexpr int M = Descriptor.m, N = Descriptor.n;
    const int k = Descriptor.k != static_cast<int>(metal::dynamic_extent)
                      ? Descriptor.k
                      : int(Descriptor.transpose_left ? left.extents().extent(1) : left.extents().extent(0));
    auto a = [&](int row, int kk) -> float {
      const int i0 = Descriptor.transpose_left ? row : kk, i1 = Descriptor.transpose_left ? kk : row;
      return Access::inside(left, i0, i1) ? static_cast<float>(Access::at(left, i0, i1)) : 0.0f;
    };
    auto b = [&](int kk, int col) -> float {
      const int i0 = Descriptor.transpose_right ? kk : col, i1 = Descriptor.transpose_right ? col : kk;
      return Access::inside(right, i0, i1) ? static_cast<float>(Access::at(right, i0, i1)) : 0.0f;
    };
    // Apple's header leaves open whether mode::multiply adds to the
    // destination ("Assumes C is initialized to zero"): seeds read it both ways.
    const bool accumulate = Descriptor.matmul_mode == matmul2d_descriptor::mode::multiply_accumulate ||
                            emu::adversary().multiply_accumulates;
    std::vector<float> tile(static_cast<std::size_t>(M) * N, 0.0f);
    if constexpr (cooperative) {
      using C = metal::emu_detail::CooperativeAccess<Dest>;
      for (int t = 0; t < ex.threads; ++t) {
        const Dest* ct = static_cast<const Dest*>(const_cast<const void*>(
            static_cast<const RunArgs*>(ex.of(t))->dest.origin));
        for (int i = 0; i < ct->get_capacity(); ++i)
          if (ct->is_valid_element(i) && accumulate) tile[C::element(*ct, i)] = static_cast<float>(C::slot(*ct, i));
      }
    } else if (accumulate) {
      for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c)
          if (Access::inside(dest, c, r)) tile[r * N + c] = static_cast<float>(Access::at(dest, c, r));
    }
    const bool backwards = ex.salt & 1u;  // the order of the k terms is the implementation's
    for (int r = 0; r < M; ++r)
      for (int c = 0; c < N; ++c) {
        float acc = tile[r * N + c];
        for (int i = 0; i < k; ++i) {
          const int kk = backwards ? k - 1 - i : i;
          acc += a(r, kk) * b(kk, c);
        }
        tile[r * N + c] = acc;
      }
    if constexpr (cooperative) {
      using C = metal::emu_detail::CooperativeAccess<Dest>;
      for (int t = 0; t < ex.threads; ++t) {
        Dest* ct = static_cast<Dest*>(const_cast<void*>(static_cast<const RunArgs*>(ex.of(t))->dest.origin));
        for (int i = 0; i < ct->get_capacity(); ++i)
          if (ct->is_valid_element(i))
            C::slot(*ct, i) = static_cast<std::remove_reference_t<decltype(C::slot(*ct, i))>>(tile[C::element(*ct, i)]);
      }
    } else {
      using Out = std::remove_cv_t<typename Dest::element_type>;
      for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c)
          if (Access::inside(dest, c, r)) Access::at(dest, c, r) = static_cast<Out>(tile[r * N + c]);
    }
  }
};

}  // namespace tensor_ops
}  // namespace mpp

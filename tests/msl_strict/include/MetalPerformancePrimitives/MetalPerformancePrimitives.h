// -*- C++ -*- Stand-in for Apple's MetalPerformancePrimitives umbrella header
// (MetalPerformancePrimitives.framework, macOS/iOS 26 SDK), the matmul2d
// tensor op only, for the strict MSL check (tests/test_msl_strict.py).
// Declarations only.
//
// Sources: Apple's MPPTensorOpsMatMul2d.h (matmul2d_descriptor with
// enum class mode { multiply, multiply_accumulate } and its constructor
// (m, n, k = dynamic_extent, transpose_left, transpose_right,
// relaxed_precision, mode = multiply); template <matmul2d_descriptor
// Descriptor, typename Scope, class... Args> class matmul2d (see the note at
// matmul2d_descriptor's conversion for how the stand-in takes it) with the static
// `descriptor`, `scope`, run(left, right, destination) taking each operand
// by thread reference (a tensor of any descriptor, or a cooperative tensor),
// get_left_input_cooperative_tensor<LeftElem, RightElem, Elem, Coord = int>,
// get_right_input_cooperative_tensor<...>,
// get_destination_cooperative_tensor<LeftOperand, RightOperand, Elem,
// Coord = int>), MPPTensorOpsTypes.h (dynamic_length, dynamic_length_v), and
// the callers in ml-explore/mlx mlx/backend/metal/kernels/steel/gemm/nax.h
// (matmul2d_descriptor(16, 32, 16, ta, tb, true, mode::multiply_accumulate),
// matmul2d<desc, metal::execution_simdgroup>, .template
// get_*_cooperative_tensor<...>(), run(ct_a, ct_b, ct_c)).
// Like Apple's header it is empty unless the compiler has tensors
// (__HAVE_TENSOR__, Metal 4). Never written from src/metal/emulator/.
#pragma once

#include <metal_stdlib>
#include <metal_tensor>
#include <metal_cooperative_tensor>

#if __METAL_VERSION__ >= 400 && defined(__HAVE_TENSOR__)

namespace mpp {
namespace tensor_ops {

template <typename T>
struct dynamic_length {
  static constexpr constant T value = metal::numeric_limits<T>::max();
};
template <typename T>
constexpr constant T dynamic_length_v = dynamic_length<T>::value;

struct matmul2d_descriptor {
  enum class mode {
    multiply,
    multiply_accumulate,
  };

  int m, n, k;
  bool transpose_left, transpose_right;
  bool relaxed_precision;
  mode matmul_mode;

  constexpr matmul2d_descriptor(int m_, int n_, int k_ = static_cast<int>(metal::dynamic_extent),
                                bool transpose_left_ = false, bool transpose_right_ = false,
                                bool relaxed_precision_ = false,
                                mode matmul_mode_ = mode::multiply)
      : m(m_), n(n_), k(k_), transpose_left(transpose_left_), transpose_right(transpose_right_),
        relaxed_precision(relaxed_precision_), matmul_mode(matmul_mode_) {}

  // Stand-in only. Apple declares template <matmul2d_descriptor Descriptor,
  // ...> class matmul2d: a class-type template parameter, which Apple's
  // Metal 4 compiler accepts but C++17 (MSL 4's base, and what this check
  // compiles kernels as) has not. So the stand-in's matmul2d takes the
  // descriptor as a tagged integer that this constexpr conversion produces
  // (a converted constant expression may use it): the kernel spelling
  // matmul2d<desc, scope> is unchanged, matmul2d::descriptor is rebuilt from
  // it, and an integer that did not come from a descriptor fails.
  constexpr operator unsigned long long() const {
    return (1ull << 63) | (unsigned long long)(unsigned(m) & 0xffffu) |
           ((unsigned long long)(unsigned(n) & 0xffffu) << 16) |
           ((unsigned long long)(unsigned(k) & 0xffffu) << 32) |
           ((unsigned long long)transpose_left << 48) | ((unsigned long long)transpose_right << 49) |
           ((unsigned long long)relaxed_precision << 50) |
           ((unsigned long long)(matmul_mode == mode::multiply_accumulate) << 51);
  }
};

namespace __msl_strict_detail {
template <typename T>
struct operand : metal::false_type {};
template <typename E, typename X, typename D, typename... Tags>
struct operand<metal::tensor<E, X, D, Tags...>> : metal::true_type {
  using element = metal::remove_addrspace_t<E>;
};
template <typename E, typename X, typename L>
struct operand<metal::cooperative_tensor<E, X, L>> : metal::true_type {
  using element = E;
};
#if defined(MSL_STRICT_SUBSET_PASS)
// OpenCL mode: decltype of a local names it with __private.
template <typename T>
struct operand<__private T> : operand<T> {};
#endif
template <typename T>
struct scope : metal::false_type {};
template <size_t N>
struct scope<metal::execution_simdgroups<N>> : metal::true_type {};
template <>
struct scope<metal::execution_threads<1>> : metal::true_type {};
// Operand element types MPPTensorOpsMatMul2d.h lists (int4b formats aside).
template <typename T>
constexpr bool input_element = metal::is_same_v<T, half> || metal::is_same_v<T, float> ||
#if defined(__HAVE_BFLOAT__)
                               metal::is_same_v<T, bfloat> ||
#endif
                               metal::is_same_v<T, int8_t> || metal::is_same_v<T, uint8_t>;
template <typename T>
constexpr bool destination_element = metal::is_same_v<T, half> || metal::is_same_v<T, float> ||
#if defined(__HAVE_BFLOAT__)
                                     metal::is_same_v<T, bfloat> ||
#endif
                                     metal::is_same_v<T, int32_t>;
struct layout {};
constexpr int field(unsigned long long packed, int shift) {
  return ((packed >> shift) & 0xffffu) == 0xffffu ? -1 : int((packed >> shift) & 0xffffu);
}
constexpr matmul2d_descriptor unpack(unsigned long long packed) {
  return matmul2d_descriptor(field(packed, 0), field(packed, 16), field(packed, 32),
                             (packed >> 48) & 1, (packed >> 49) & 1, (packed >> 50) & 1,
                             ((packed >> 51) & 1) ? matmul2d_descriptor::mode::multiply_accumulate
                                                  : matmul2d_descriptor::mode::multiply);
}
}  // namespace __msl_strict_detail

template <unsigned long long Descriptor, typename Scope, class... Args>
class matmul2d {
  static_assert(Descriptor >> 63, "matmul2d's first template argument must be a matmul2d_descriptor");
  static_assert(__msl_strict_detail::scope<Scope>::value,
                "Scope must be execution_simdgroups<N> or execution_thread");

 public:
  // Apple: `static constexpr constant matmul2d_descriptor descriptor`; clang
  // cannot construct a class object in an address space, so no `constant`.
  static constexpr matmul2d_descriptor descriptor = __msl_strict_detail::unpack(Descriptor);
  using scope = Scope;

  matmul2d() = default;

  template <typename LeftOperandType, typename RightOperandType, typename DestinationOperandType,
            typename = metal::enable_if_t<__msl_strict_detail::operand<LeftOperandType>::value &&
                                          __msl_strict_detail::operand<RightOperandType>::value &&
                                          __msl_strict_detail::operand<DestinationOperandType>::value>>
  void run(thread LeftOperandType& left, thread RightOperandType& right,
           thread DestinationOperandType& destination) const {
    static_assert(
        __msl_strict_detail::input_element<typename __msl_strict_detail::operand<LeftOperandType>::element> &&
            __msl_strict_detail::input_element<typename __msl_strict_detail::operand<RightOperandType>::element>,
        "matmul2d: unsupported operand element type");
    static_assert(__msl_strict_detail::destination_element<
                      typename __msl_strict_detail::operand<DestinationOperandType>::element>,
                  "matmul2d: unsupported destination element type");
  }

  template <typename LeftElementType, typename RightElementType, typename ElementType,
            typename CoordType = int>
  metal::cooperative_tensor<ElementType, metal::dextents<CoordType, 2>, __msl_strict_detail::layout>
  get_left_input_cooperative_tensor() const;
  template <typename LeftElementType, typename RightElementType, typename ElementType,
            typename CoordType = int>
  metal::cooperative_tensor<ElementType, metal::dextents<CoordType, 2>, __msl_strict_detail::layout>
  get_right_input_cooperative_tensor() const;
  template <typename LeftOperandType, typename RightOperandType, typename ElementType,
            typename CoordType = int,
            typename = metal::enable_if_t<__msl_strict_detail::operand<LeftOperandType>::value &&
                                          __msl_strict_detail::operand<RightOperandType>::value>>
  metal::cooperative_tensor<ElementType, metal::dextents<CoordType, 2>, __msl_strict_detail::layout>
  get_destination_cooperative_tensor() const;
};

}  // namespace tensor_ops
}  // namespace mpp

#endif  // __HAVE_TENSOR__

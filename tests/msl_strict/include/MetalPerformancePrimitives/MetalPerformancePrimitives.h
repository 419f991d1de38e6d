// -*- C++ -*- Stand-in for Apple's MetalPerformancePrimitives umbrella header
// (MetalPerformancePrimitives.framework, macOS/iOS 26 SDK), the matmul2d
// tensor op only, for the strict MSL check (tests/test_msl_strict.py).
// Declarations only.
//
// Sources: Apple's MPPTensorOpsMatMul2d.h (matmul2d_descriptor with
// enum class mode { multiply, multiply_accumulate } and its constructor
// (m, n, k = dynamic_extent, transpose_left, transpose_right,
// relaxed_precision, mode = multiply); template <matmul2d_descriptor
// Descriptor, typename Scope, class... Args> class matmul2d with the static
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

#if defined(MSL_STRICT_SUBSET_PASS)
  // Subset pass only (C++ for OpenCL is C++17: no class-type template
  // parameters): the descriptor reaches matmul2d as an integer through this
  // constexpr conversion. The strict pass keeps Apple's class-type parameter.
  constexpr operator unsigned long long() const {
    return (unsigned long long)(unsigned(m) & 0xffffu) | ((unsigned long long)(unsigned(n) & 0xffffu) << 16) |
           ((unsigned long long)(unsigned(k) & 0xffffu) << 32) |
           ((unsigned long long)transpose_left << 48) | ((unsigned long long)transpose_right << 49) |
           ((unsigned long long)relaxed_precision << 50) | ((unsigned long long)matmul_mode << 51);
  }
#endif
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
}  // namespace __msl_strict_detail

#if defined(MSL_STRICT_SUBSET_PASS)
template <unsigned long long Descriptor, typename Scope, class... Args>
#else
template <matmul2d_descriptor Descriptor, typename Scope, class... Args>
#endif
class matmul2d {
  static_assert(__msl_strict_detail::scope<Scope>::value,
                "Scope must be execution_simdgroups<N> or execution_thread");

 public:
#if !defined(MSL_STRICT_SUBSET_PASS)
  // Apple: `static constexpr constant matmul2d_descriptor descriptor`; clang
  // cannot construct a class object in an address space, so no `constant`.
  static constexpr matmul2d_descriptor descriptor = Descriptor;
#endif
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

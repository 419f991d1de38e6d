// MSL scalar and vector types as C++ types, for compiling Metal kernel
// sources on the CPU. No MSL keyword macros here (see msl_shim.h), so this
// header is safe to include from ordinary C++.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../../common/half.h"

namespace metal {

using uint = unsigned int;
using ushort = unsigned short;
using uchar = unsigned char;
using ulong = unsigned long;

// ------------------------------------------------------------------ half / bfloat
// The emulator's machinery lives in emu_detail: only Apple's names (half,
// bfloat, ...) are public in namespace metal (tests/test_msl_strict.py).
namespace emu_detail {

// A 16-bit float that rounds after every operation, as GPU half arithmetic
// does: an op computed in float32 then rounded once equals the correctly
// rounded 16-bit op (float32 has more than 2p+2 bits for p = 11 or 8).
template <std::uint16_t (*Store)(float), float (*Load)(std::uint16_t)>
struct Float16Like {
  std::uint16_t bits = 0;

  Float16Like() = default;
  template <class A, class = std::enable_if_t<std::is_arithmetic<A>::value>>
  Float16Like(A v) : bits(Store(static_cast<float>(v))) {}
  operator float() const { return Load(bits); }

  // Threadgroup memory is volatile in the emulator (see msl_shim.h): read
  // and write 16-bit floats there. Templates, so the type stays trivially
  // copyable (a template is never a copy constructor or assignment).
  template <class V, class = std::enable_if_t<std::is_same<V, volatile Float16Like>::value>>
  Float16Like(const V& o) : bits(o.bits) {}
  template <class A>
  void operator=(const A& v) volatile {
    bits = Float16Like(v).bits;
  }
  operator float() const volatile { return Load(bits); }

  static Float16Like from_bits(std::uint16_t b) {
    Float16Like h;
    h.bits = b;
    return h;
  }
  Float16Like operator-() const { return from_bits(static_cast<std::uint16_t>(bits ^ 0x8000u)); }
#define ONEBIT_F16_ASSIGN(op)                                          \
  template <class A>                                                   \
  Float16Like& operator op##=(const A& o) {                            \
    *this = Float16Like(static_cast<float>(*this) op static_cast<float>(o)); \
    return *this;                                                      \
  }
  ONEBIT_F16_ASSIGN(+)
  ONEBIT_F16_ASSIGN(-)
  ONEBIT_F16_ASSIGN(*)
  ONEBIT_F16_ASSIGN(/)
#undef ONEBIT_F16_ASSIGN
};


template <class T>
struct is_f16 : std::false_type {};
template <std::uint16_t (*S)(float), float (*L)(std::uint16_t)>
struct is_f16<Float16Like<S, L>> : std::true_type {};

// Binary ops: 16-bit op 16-bit (or an integer) stays 16-bit; with float
// (or a double literal, which MSL treats as float) the result is float.
#define ONEBIT_F16_BINOP(op)                                                        \
  template <class H, class = std::enable_if_t<is_f16<H>::value>>                    \
  H operator op(H a, H b) { return H(static_cast<float>(a) op static_cast<float>(b)); } \
  template <class H, class A,                                                        \
            class = std::enable_if_t<is_f16<H>::value && std::is_integral<A>::value>, \
            class = void>                                                            \
  H operator op(H a, A b) { return H(static_cast<float>(a) op static_cast<float>(b)); } \
  template <class H, class A,                                                        \
            class = std::enable_if_t<is_f16<H>::value && std::is_integral<A>::value>, \
            class = void>                                                            \
  H operator op(A a, H b) { return H(static_cast<float>(a) op static_cast<float>(b)); } \
  template <class H, class A,                                                        \
            class = std::enable_if_t<is_f16<H>::value && std::is_floating_point<A>::value>, \
            class = void, class = void>                                              \
  float operator op(H a, A b) { return static_cast<float>(a) op static_cast<float>(b); } \
  template <class H, class A,                                                        \
            class = std::enable_if_t<is_f16<H>::value && std::is_floating_point<A>::value>, \
            class = void, class = void>                                              \
  float operator op(A a, H b) { return static_cast<float>(a) op static_cast<float>(b); }
ONEBIT_F16_BINOP(+)
ONEBIT_F16_BINOP(-)
ONEBIT_F16_BINOP(*)
ONEBIT_F16_BINOP(/)
#undef ONEBIT_F16_BINOP

#define ONEBIT_F16_CMP(op)                                                          \
  template <class H, class A, class = std::enable_if_t<is_f16<H>::value>>           \
  bool operator op(H a, A b) { return static_cast<float>(a) op static_cast<float>(b); } \
  template <class H, class A,                                                        \
            class = std::enable_if_t<is_f16<H>::value && !is_f16<A>::value>, class = void> \
  bool operator op(A a, H b) { return static_cast<float>(a) op static_cast<float>(b); }
ONEBIT_F16_CMP(<)
ONEBIT_F16_CMP(>)
ONEBIT_F16_CMP(<=)
ONEBIT_F16_CMP(>=)
ONEBIT_F16_CMP(==)
ONEBIT_F16_CMP(!=)
#undef ONEBIT_F16_CMP

}  // namespace emu_detail

using half = emu_detail::Float16Like<onebit::float_to_half, onebit::half_to_float>;
using bfloat = emu_detail::Float16Like<onebit::float_to_bf16, onebit::bf16_to_float>;

// ------------------------------------------------------------------ vectors
namespace emu_detail {
template <class T, int N>
struct vec_storage;
template <class T>
struct vec_storage<T, 2> {
  T x{}, y{};
};
template <class T>
struct vec_storage<T, 3> {
  T x{}, y{}, z{};
};
template <class T>
struct vec_storage<T, 4> {
  T x{}, y{}, z{}, w{};
};
}  // namespace emu_detail

template <class T, int N>
struct vec : emu_detail::vec_storage<T, N> {
  vec() = default;
  // Broadcast a scalar (MSL: float4(1.0)).
  template <class A, class = std::enable_if_t<std::is_convertible<A, T>::value>>
  vec(A s) {
    for (int i = 0; i < N; ++i) (*this)[i] = T(s);
  }
  // Component-wise construction (float2(a, b), float4(a, b, c, d)).
  template <class A, class B, class... R, class = std::enable_if_t<sizeof...(R) + 2 == N>>
  vec(A a, B b, R... rest) {
    const T v[N] = {T(a), T(b), T(rest)...};
    for (int i = 0; i < N; ++i) (*this)[i] = v[i];
  }
  // Conversion from another element type (float4(half4_value)).
  template <class U, class = std::enable_if_t<!std::is_same<U, T>::value>>
  explicit vec(const vec<U, N>& o) {
    for (int i = 0; i < N; ++i) (*this)[i] = T(o[i]);
  }

  T& operator[](int i) { return (&this->x)[i]; }
  const T& operator[](int i) const { return (&this->x)[i]; }

  // Reads and writes of vectors in (volatile) emulated threadgroup memory.
  template <class V, class = std::enable_if_t<std::is_same<V, volatile vec>::value>>
  vec(const V& o) {
    for (int i = 0; i < N; ++i) (*this)[i] = T((&o.x)[i]);
  }
  template <class A>
  void operator=(const A& v) volatile {
    const vec t(v);
    for (int i = 0; i < N; ++i) (&this->x)[i] = t[i];
  }
};

#define ONEBIT_VEC_OP(op)                                                          \
  template <class T, int N>                                                        \
  vec<T, N> operator op(const vec<T, N>& a, const vec<T, N>& b) {                  \
    vec<T, N> r;                                                                   \
    for (int i = 0; i < N; ++i) r[i] = T(a[i] op b[i]);                            \
    return r;                                                                      \
  }                                                                                \
  template <class T, int N, class S, class = std::enable_if_t<std::is_arithmetic<S>::value || emu_detail::is_f16<S>::value>> \
  vec<T, N> operator op(const vec<T, N>& a, S s) {                                 \
    vec<T, N> r;                                                                   \
    for (int i = 0; i < N; ++i) r[i] = T(a[i] op T(s));                            \
    return r;                                                                      \
  }                                                                                \
  template <class T, int N, class S, class = std::enable_if_t<std::is_arithmetic<S>::value || emu_detail::is_f16<S>::value>> \
  vec<T, N> operator op(S s, const vec<T, N>& a) {                                 \
    vec<T, N> r;                                                                   \
    for (int i = 0; i < N; ++i) r[i] = T(T(s) op a[i]);                            \
    return r;                                                                      \
  }                                                                                \
  template <class T, int N, class B>                                               \
  vec<T, N>& operator op##=(vec<T, N>& a, const B& b) {                            \
    a = a op b;                                                                    \
    return a;                                                                      \
  }
ONEBIT_VEC_OP(+)
ONEBIT_VEC_OP(-)
ONEBIT_VEC_OP(*)
ONEBIT_VEC_OP(/)
ONEBIT_VEC_OP(&)
ONEBIT_VEC_OP(|)
ONEBIT_VEC_OP(^)
ONEBIT_VEC_OP(<<)
ONEBIT_VEC_OP(>>)
#undef ONEBIT_VEC_OP

#define ONEBIT_VEC_ALIASES(T)  \
  using T##2 = vec<T, 2>;      \
  using T##3 = vec<T, 3>;      \
  using T##4 = vec<T, 4>;
ONEBIT_VEC_ALIASES(float)
ONEBIT_VEC_ALIASES(half)
ONEBIT_VEC_ALIASES(bfloat)
ONEBIT_VEC_ALIASES(int)
ONEBIT_VEC_ALIASES(uint)
ONEBIT_VEC_ALIASES(short)
ONEBIT_VEC_ALIASES(ushort)
ONEBIT_VEC_ALIASES(char)
ONEBIT_VEC_ALIASES(uchar)
ONEBIT_VEC_ALIASES(bool)
#undef ONEBIT_VEC_ALIASES
using ulong2 = vec<ulong, 2>;

// ------------------------------------------------------------------ math
using std::numeric_limits;

template <class T>
T min(T a, T b) {
  return b < a ? b : a;
}
template <class T>
T max(T a, T b) {
  return a < b ? b : a;
}
template <class T>
T clamp(T v, T lo, T hi) {
  return min(max(v, lo), hi);
}
template <class T>
T select(T a, T b, bool c) {
  return c ? b : a;
}
template <class T>
T abs(T v) {
  return v < T(0) ? T(-v) : v;
}
inline float fabs(float v) { return std::fabs(v); }
inline float fmin(float a, float b) { return std::fmin(a, b); }
inline float fmax(float a, float b) { return std::fmax(a, b); }
inline float fma(float a, float b, float c) { return std::fma(a, b, c); }
inline float rint(float v) { return std::rint(v); }
inline float round(float v) { return std::round(v); }
inline float floor(float v) { return std::floor(v); }
inline float ceil(float v) { return std::ceil(v); }
inline float trunc(float v) { return std::trunc(v); }
inline float sqrt(float v) { return std::sqrt(v); }
inline float rsqrt(float v) { return 1.0f / std::sqrt(v); }
inline float exp(float v) { return std::exp(v); }
inline float log(float v) { return std::log(v); }
inline bool isnan(float v) { return std::isnan(v); }
inline bool isinf(float v) { return std::isinf(v); }
inline bool isfinite(float v) { return std::isfinite(v); }

namespace precise {
inline float divide(float a, float b) { return a / b; }
}  // namespace precise

template <class To, class From>
To as_type(const From& v) {
  static_assert(sizeof(To) == sizeof(From), "as_type needs equal sizes");
  To r;
  std::memcpy(&r, &v, sizeof(To));
  return r;
}

}  // namespace metal

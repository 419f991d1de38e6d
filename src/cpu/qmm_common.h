// What every CPU kernel shares: the per-group factors, widening, sums of x,
// scratch buffers, and the helpers that turn run-time format values into
// template constants. Part of qmm_kernels.h: included only through it.

// The per-group factors that make every mode one formula, w_hat = A*q + C:
// affine A = scale, C = bias; symmetric (q in {0, 1}) A = 2*scale, C = -scale.
// Both are exact in float32.
struct Factors {
  const float* A;
  const float* C;
  std::vector<float> storage;  // used when the stored scales are not usable as is
};

template <class V>
void widen(const void* src, DType dtype, std::int64_t n, float* dst) {
  if (dtype == DType::float32) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    return;
  }
  const auto* s = static_cast<const std::uint16_t*>(src);
  const bool half = dtype == DType::float16;
  std::int64_t i = 0;
  for (; i + V::L <= n; i += V::L) V::store(dst + i, half ? V::load_f16(s + i) : V::load_bf16(s + i));
  for (; i < n; ++i) dst[i] = half ? half_to_float(s[i]) : bf16_to_float(s[i]);
}

template <class V>
struct FactorJob {
  const QmmArgs* a;
  Factors* f;
  std::int64_t per_task, total;
};

// A and C of the n groups from group `first` on (groups in storage order).
template <class V>
void factor_range(const QmmArgs& a, std::int64_t first, std::int64_t n, float* A, float* C) {
  const std::size_t es = dtype_size(a.scale_dtype);
  widen<V>(static_cast<const char*>(a.scales) + first * es, a.scale_dtype, n, A);
  if (a.spec.mode == Mode::affine) {
    widen<V>(static_cast<const char*>(a.biases) + first * es, a.scale_dtype, n, C);
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) {
    C[i] = -A[i];
    A[i] *= 2;
  }
}

template <class V>
void factor_task(void* ctx, std::int64_t t) {
  const auto& job = *static_cast<const FactorJob<V>*>(ctx);
  const std::int64_t first = t * job.per_task, n = std::min(job.per_task, job.total - first);
  float* A = job.f->storage.data() + first;
  factor_range<V>(*job.a, first, n, A, A + job.total);
}

template <class V>
void make_factors(const QmmArgs& a, Factors& f) {
  const std::int64_t packed_len = a.transpose ? a.K : a.N;
  const std::int64_t total = (a.transpose ? a.N : a.K) * (packed_len / a.spec.group_size);
  if (a.scale_dtype == DType::float32 && a.spec.mode == Mode::affine) {
    f.A = static_cast<const float*>(a.scales);  // already what the kernels want
    f.C = static_cast<const float*>(a.biases);
    return;
  }
  f.storage.resize(static_cast<std::size_t>(2 * total));
  FactorJob<V> job{&a, &f, 1 << 15, total};
  parallel_for((total + job.per_task - 1) / job.per_task, factor_task<V>, &job);
  f.A = f.storage.data();
  f.C = f.A + total;
}

template <class V>
float dot(const float* a, const float* b, std::int64_t n) {
  typename V::F acc = V::zero();
  std::int64_t i = 0;
  for (; i + V::L <= n; i += V::L) acc = V::fma(V::load(a + i), V::load(b + i), acc);
  float s = V::hsum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// out[r * G + g] = sum of x[r][g*gs .. (g+1)*gs), for `rows` rows of length K.
template <class V>
void group_sums(const float* x, std::int64_t rows, std::int64_t K, int gs, float* out) {
  const std::int64_t G = K / gs;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t g = 0; g < G; ++g) {
      const float* p = x + r * K + g * gs;
      typename V::F acc = V::zero();
      for (int j = 0; j < gs; j += V::L) acc = V::add(acc, V::load(p + j));
      out[r * G + g] = V::hsum(acc);
    }
}

// A per-thread buffer that survives between calls (no allocation per task).
template <class V, int Slot, class T = float>
T* scratch(std::size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Calls f(std::integral_constant<int, v>) for the entry v of `table` equal
// to the runtime `value`: turns a validated format parameter into a
// compile-time constant without restating the table.
template <const auto& table, std::size_t I = 0, class Fn>
void visit(int value, Fn&& f) {
  constexpr std::size_t n = sizeof(table) / sizeof(table[0]);
  if constexpr (I < n) {
    if (value == table[I]) return f(std::integral_constant<int, table[I]>{});
    visit<table, I + 1>(value, f);
  }
}

// f(std::integral_constant<int, i>{}) for i = 0 .. N - 1, unrolled by the
// compiler whatever its heuristics.
template <class Fn, int... Is>
inline ONEBIT_ALWAYS_INLINE void for_each_index(Fn& f, std::integer_sequence<int, Is...>) {
  (f(std::integral_constant<int, Is>{}), ...);
}
template <int N, class Fn>
inline ONEBIT_ALWAYS_INLINE void for_each_index(Fn&& f) {
  for_each_index(f, std::make_integer_sequence<int, N>{});
}

// Enough tasks to balance the threads, each a whole number of `unit`s.
inline std::int64_t split(std::int64_t total, std::int64_t unit, std::int64_t max_size) {
  const std::int64_t tasks = 8 * static_cast<std::int64_t>(pool_threads());
  std::int64_t size = (total + tasks - 1) / tasks;
  size = std::min(std::max<std::int64_t>(size, 1), max_size);
  return (size + unit - 1) / unit * unit;
}

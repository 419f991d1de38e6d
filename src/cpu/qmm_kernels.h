// The SIMD quantized-matmul kernels, written once as templates over a traits
// struct V that each ISA file (avx512.cpp, avx2.cpp, neon.cpp) defines.
//
// Include this file only from an ISA file, inside its target region and
// inside an unnamed namespace, after kernel_includes.h: it has no #include of
// its own so that nothing shared gets compiled for the ISA (see isa.h).
//
// What V provides (L = float32 lanes of a vector):
//   F, Mask                 a vector of L floats, a lane mask
//   zero() set1(f) load(p) store(p, v) add(a, b) fma(a, b, c) = a*b + c, hsum(v)
//   mask(bits, v)           the L bits v*L .. v*L+L-1 of a packed 1-bit row
//   mask_add<Form>(acc, m, x)  acc + (m ? x : 0), lane by lane; Form 0 or 1
//                           picks one of two equivalent instruction forms
//                           (the kernels alternate them across accumulators)
//   select(m, off, on)      m ? on : off
//   codes<B>(p)             the L codes of B bits (2, 4 or 8) that start at byte p, as floats
//   load_f16(p) load_bf16(p)  L widened half / bfloat16 values
//   kRowsM1                 W rows per pass of the small-M row kernel at M = 1
//   kTileM, kTileN          x rows x W rows per pass of the small-M row kernel at M > 1
//   kColRows, kColVecs      x rows x column vectors per pass of the small-M column kernel
//   kMR                     x rows of the panel micro-kernel (which is kMR x 2L)
//   kLutBits                the index bits of V's in-register table lookup, 0 if
//                           none (and the members listed in the "lut" section)
//
// Four kernels, chosen by shape (see qmm()):
//   lut    transpose=True, 1 bit at any M and 2 bits to M = kLutMaxM2, ISAs
//          with a register table lookup (AVX-512, AVX2): see the "lut"
//          section. The only kernel that reads interleaved16 weights; the
//          others get 512-row slabs converted (run_deinterleaved).
//   rows   transpose=True, small M, bits 1/2/4/8. For 1 bit, per group of
//          W row n: sum_k w_hat_k x_k = A * sum_k q_k x_k + C * sum_k x_k,
//          with the group sums of x computed once per call and shared by
//          all N rows, and sum q_k x_k a masked add straight from the
//          packed bits (no decode at all). Wider codes are decoded and
//          dequantized (w_hat = A q + C) in registers, then multiplied;
//          on the ISAs with a register table lookup, 2- and 4-bit codes
//          are decoded a byte per lane, and dequantized by a lookup in the
//          group's table of 2^B values where it is wide enough (see "rows:
//          byte decode").
//          Several W rows share each load of x and several x rows share
//          each decoded weight vector.
//   cols   transpose=False, small M, bits 1/2/4/8: vectorised along N (the
//          packed axis); per row k of W, 1 bit adds a broadcast x_k * A
//          where the bits are set, wider codes are dequantized and
//          multiplied by x_k.
//   panel  everything else (large M, bits 3/5/6): dequantize KC x 2L tiles
//          of W into float32 panels (16 KiB each, kPanels per thread, reused
//          by every x row) and run a register-blocked FMA micro-kernel over
//          them.
// Every kernel multiplies the exact float32 activations and accumulates in
// float32; only the summation order differs from the reference.

// ------------------------------------------------------------------ helpers

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

// Bit widths with a vector decoder (V::codes / V::mask); the others
// (3, 5, 6: codes straddle words) go through the panel kernel's scalar decode.
constexpr bool has_vector_decode(int bits) { return bits == 1 || bits == 2 || bits == 4 || bits == 8; }

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

// Rows of x up to which the small-M kernels beat the panel kernel, measured
// on Zen 4 (AVX-512) at 4096 x 4096: the small-M kernels cost about the same
// per x row as the panel's FMAs for 1 bit, and more for wider codes, while
// the panel pays a fixed cost to dequantize (and, for transpose=True,
// transpose) all of W. AVX2 on Zen 3 agrees at M = 32 (4096 x 4096, one
// thread, rows against panel, medians of three alternating runs: 2 bits
// 32-33 vs 35-37 ms, 4 bits 28-32 vs 37-41, 8 bits 31-32 vs 36).
inline bool small_m(const QmmArgs& a) {
  if (a.transpose) return a.M <= (a.spec.bits == 1 ? 64 : 32);
  return a.M <= (a.spec.bits == 1 ? 32 : 8);
}

// ------------------------------------------------------------------ rows: byte decode

// With load_bytes(p) (L bytes from p, one per lane, zero-extended; the ISAs
// with a register table lookup have it) the rows kernel decodes 2- and
// 4-bit codes a byte per lane: L bytes of codes are widened to one byte per
// lane, and the lane's low B bits are the code; shifting the lanes by B
// bits brings up the byte's next code. A code is dequantized by a lookup
// in a table holding A * q + C for the group when V's lookup has 2^B
// entries or more (2 bits; 4 bits with AVX-512's 16; the lookup's other
// index bits select a repeat of the same entries), else by converting it
// (V::low_codes<B>) and the same fma: either way the arithmetic decode's
// w_hat. Lane i then holds codes (8/B) i .. (8/B) i + 8/B - 1 of the L
// bytes, so x is read in that order: byte_order permutes it once per call.
// This replaces a broadcast and a variable shift per vector with one
// widening load per 8/B vectors and a shift. The L bytes must lie in
// one group: AVX-512's 2-bit codes at group size 32 keep the arithmetic
// decode. Measured on Zen 4 (AVX-512, one thread, 4096 x 4096, M = 1,
// group 128): 2 bits 1.17 -> 0.67 ms, 4 bits 1.27 -> 0.65 ms; on Zen 3
// (AVX2, the same shape, fastest of two alternating runs): 2 bits M = 2
// 1.95 -> 1.60 ms, M = 4 2.56 -> 2.28, M = 32 20.9 -> 18.6; 4 bits M = 1
// 1.20 -> 1.13 ms, M = 4 2.44 -> 2.07, M = 32 20.1 -> 17.2.
template <class V, int B, int GS>
constexpr bool byte_decode() {
  return (B == 2 || B == 4) && V::kLutBits > 0 && V::L * (8 / B) <= GS;
}

// v[p] = p mod 2^B: the code a lookup index p stands for (the table entries
// repeat: lookup reads 4 index bits, 2-bit codes fill only 2).
template <int B>
struct CodeValues {
  alignas(64) float v[16];
};
template <int B>
const CodeValues<B>& code_values() {
  static const CodeValues<B> values = [] {
    CodeValues<B> c{};
    for (int p = 0; p < 16; ++p) c.v[p] = static_cast<float>(p & ((1 << B) - 1));
    return c;
  }();
  return values;
}

// dst = src (n floats, n a multiple of L * 8/B) with every run of
// L * 8/B values transposed from L x 8/B to 8/B x L: position L j + i
// holds x value (8/B) i + j, the code lane i of the L bytes of a run finds
// after j shifts.
template <int L, int B>
void byte_order(const float* src, std::int64_t n, float* dst) {
  constexpr int per_byte = 8 / B, run = L * per_byte;
  for (std::int64_t r = 0; r < n; r += run)
    for (int i = 0; i < L; ++i)
      for (int j = 0; j < per_byte; ++j) dst[r + L * j + i] = src[r + per_byte * i + j];
}

// x as the rows kernel reads it: a.x itself, or permuted into `storage`.
template <class V, int B, int GS>
const float* rows_x(const QmmArgs& a, std::vector<float>& storage) {
  if constexpr (byte_decode<V, B, GS>()) {
    storage.resize(static_cast<std::size_t>(a.M * a.K));
    byte_order<V::L, B>(a.x, a.M * a.K, storage.data());
    return storage.data();
  }
  return a.x;
}

// ------------------------------------------------------------------ rows

// RM rows of x against RN rows of W (packed along K), over all of K. The
// group size is a template parameter so the loop over a group's vectors
// unrolls completely.
template <class V, int B, int GS, int RM, int RN>
void rows_tile(const float* x, const std::uint8_t* w, const float* A, const float* C,
               const float* xs, float* out, std::int64_t K, std::int64_t N) {
  using F = typename V::F;
  constexpr int vpg = GS / V::L;
  const std::int64_t G = K / GS, row_bytes = K * B / 8;
  F tot[RM][RN];
  for (auto& r : tot)
    for (F& t : r) t = V::zero();
  for (std::int64_t g = 0; g < G; ++g) {
    if constexpr (byte_decode<V, B, GS>()) {
      // L bytes of codes, one byte per lane, the code in a lane's low B
      // bits; x is in byte order (see "rows: byte decode").
      constexpr int L = V::L, per_byte = 8 / B;
      constexpr bool by_lookup = B <= V::kLutBits;
      F table[RN], a[RN], c[RN];
      for (int n = 0; n < RN; ++n) {
        a[n] = V::set1(A[n * G + g]);
        c[n] = V::set1(C[n * G + g]);
        if constexpr (by_lookup) table[n] = V::fma(V::load(code_values<B>().v), a[n], c[n]);
      }
      for (std::int64_t k = g * GS; k < (g + 1) * GS; k += L * per_byte) {
        F xv[RM][per_byte];
        for (int m = 0; m < RM; ++m)
          for (int j = 0; j < per_byte; ++j) xv[m][j] = V::load(x + m * K + k + L * j);
        for (int n = 0; n < RN; ++n) {
          typename V::I q = V::load_bytes(w + n * row_bytes + k * B / 8);
          for (int j = 0; j < per_byte; ++j) {
            F wv;
            if constexpr (by_lookup)
              wv = V::lookup(q, table[n]);
            else
              wv = V::fma(V::template low_codes<B>(q), a[n], c[n]);
            for (int m = 0; m < RM; ++m) tot[m][n] = V::fma(wv, xv[m][j], tot[m][n]);
            q = V::template shift_right<B>(q);
          }
        }
      }
    } else if constexpr (B == 1) {
      // The group algebra: sum(x where bit) by masked adds, scaled once.
      F acc[RM][RN];
      for (auto& r : acc)
        for (F& t : r) t = V::zero();
      for (int j = 0; j < vpg; ++j) {
        const std::int64_t v = g * vpg + j;
        F xv[RM];
        for (int m = 0; m < RM; ++m) xv[m] = V::load(x + m * K + v * V::L);
        for (int n = 0; n < RN; ++n) {
          const auto mk = V::mask(w + n * row_bytes, v);
          for (int m = 0; m < RM; ++m)
            acc[m][n] = (m + n) & 1 ? V::template mask_add<1>(acc[m][n], mk, xv[m])
                                    : V::template mask_add<0>(acc[m][n], mk, xv[m]);
        }
      }
      for (int n = 0; n < RN; ++n) {
        const F a = V::set1(A[n * G + g]);
        for (int m = 0; m < RM; ++m) tot[m][n] = V::fma(acc[m][n], a, tot[m][n]);
      }
    } else {
      // Wider codes: dequantize, then multiply. (The group algebra would
      // add terms A*q*x and C*x that are much larger than w_hat*x when
      // w_hat is near zero, and their cancellation would cost accuracy.)
      F a[RN], c[RN];
      for (int n = 0; n < RN; ++n) {
        a[n] = V::set1(A[n * G + g]);
        c[n] = V::set1(C[n * G + g]);
      }
      for (int j = 0; j < vpg; ++j) {
        const std::int64_t v = g * vpg + j;
        F xv[RM];
        for (int m = 0; m < RM; ++m) xv[m] = V::load(x + m * K + v * V::L);
        for (int n = 0; n < RN; ++n) {
          const F wv = V::fma(V::template codes<B>(w + n * row_bytes + v * (V::L * B / 8)), a[n], c[n]);
          for (int m = 0; m < RM; ++m) tot[m][n] = V::fma(wv, xv[m], tot[m][n]);
        }
      }
    }
  }
  for (int m = 0; m < RM; ++m)
    for (int n = 0; n < RN; ++n) {
      out[m * N + n] = V::hsum(tot[m][n]);
      if constexpr (B == 1) out[m * N + n] += dot<V>(C + n * G, xs + m * G, G);
    }
}

struct RowsJob {
  const QmmArgs* a;
  const Factors* f;
  const float* x;   // M x K, in the order rows_tile reads it (see byte_order)
  const float* xs;  // M x G group sums of x
  std::int64_t rows_per_task;
};

// x rows [m, m + RM) against W rows [n0, n0 + nr).
template <class V, int B, int GS, int RM, int RN>
void rows_span(const RowsJob& job, std::int64_t m, std::int64_t n0, std::int64_t nr) {
  const QmmArgs& a = *job.a;
  const std::int64_t K = a.K, N = a.N, G = K / GS, row_bytes = K * B / 8;
  const auto* w = reinterpret_cast<const std::uint8_t*>(a.wq);
  auto tile = [&](auto rn, std::int64_t n) {
    rows_tile<V, B, GS, RM, decltype(rn)::value>(job.x + m * K, w + n * row_bytes, job.f->A + n * G,
                                                 job.f->C + n * G, job.xs + m * G,
                                                 a.out + m * N + n, K, N);
  };
  std::int64_t n = n0;
  for (; n + RN <= n0 + nr; n += RN) tile(std::integral_constant<int, RN>{}, n);
  for (; n < n0 + nr; ++n) tile(std::integral_constant<int, 1>{}, n);
}

// x rows [m, m + rm), rm <= RM (at most kTileM): one tile of rm x kTileN W
// rows, or for a single x row kRowsM1 W rows at a time (the M = 1 kernel).
template <class V, int B, int GS, int RM = V::kTileM>
void rows_block(int rm, const RowsJob& job, std::int64_t m, std::int64_t n0, std::int64_t nr) {
  if constexpr (RM == 1) {
    rows_span<V, B, GS, 1, V::kRowsM1>(job, m, n0, nr);
  } else {
    if (rm < RM) return rows_block<V, B, GS, RM - 1>(rm, job, m, n0, nr);
    rows_span<V, B, GS, RM, V::kTileN>(job, m, n0, nr);
  }
}

// One task: a block of W rows against every x row. The block (at most a
// few hundred rows of packed weights) stays in cache while x streams by.
template <class V, int B, int GS>
void rows_task(void* ctx, std::int64_t t) {
  const auto& job = *static_cast<const RowsJob*>(ctx);
  const QmmArgs& a = *job.a;
  const std::int64_t n0 = t * job.rows_per_task, nr = std::min(job.rows_per_task, a.N - n0);
  for (std::int64_t m = 0; m < a.M; m += V::kTileM)
    rows_block<V, B, GS>(static_cast<int>(std::min<std::int64_t>(V::kTileM, a.M - m)), job, m, n0, nr);
}

// Enough tasks to balance the threads, each a whole number of row tiles.
inline std::int64_t split(std::int64_t total, std::int64_t unit, std::int64_t max_size) {
  const std::int64_t tasks = 8 * static_cast<std::int64_t>(pool_threads());
  std::int64_t size = (total + tasks - 1) / tasks;
  size = std::min(std::max<std::int64_t>(size, 1), max_size);
  return (size + unit - 1) / unit * unit;
}

template <class V, int B>
void qmm_rows(const QmmArgs& a, const Factors& f) {
  const int gs = a.spec.group_size;
  std::vector<float> xs(static_cast<std::size_t>(a.M * (a.K / gs)));
  group_sums<V>(a.x, a.M, a.K, gs, xs.data());
  RowsJob job{&a, &f, nullptr, xs.data(), split(a.N, V::kTileN, 512)};
  const std::int64_t tasks = (a.N + job.rows_per_task - 1) / job.rows_per_task;
  visit<format::kGroupSizes>(gs, [&](auto g) {
    constexpr int GS = decltype(g)::value;
    std::vector<float> x;
    job.x = rows_x<V, B, GS>(a, x);
    parallel_for(tasks, rows_task<V, B, GS>, &job);
  });
}

// ------------------------------------------------------------------ lut

// transpose=True, 1 bit at any M and 2 bits to M = kLutMaxM2, for ISAs with an
// in-register table lookup of a vector of L = 2^P floats by a P-bit index
// per lane (V::kLutBits = P: AVX-512's vpermps, P = 4; AVX2's vpermps,
// P = 3). Each lookup index is P consecutive bits of a packed 32-bit word,
// holding P/B codes (or parts of codes: see lut_tables); for the x_k of
// those codes a table holds the 2^P possible sums sum_i q_i(p) x_i over the
// codes q_i(p) of index p, and per group of W row n the group algebra gives
// sum_k w_hat_k x_k = A * sum_k q_k x_k + C * sum_k x_k. With L W rows in
// the L lanes, one 32-bit word per row feeds ceil(32/P) lookups: at 1 bit
// and P = 4, 8 lookups for 512 weights, versus 32 masked adds (each needing
// a mask register load) in the row kernel; at P = 3, 11 lookups for 256
// weights (the last reads bits 30 and 31 only), versus 32 mask loads, ands
// and adds. At 2 bits a word holds 16 weights: with P = 4, 8 lookups
// for 256 weights, versus 16 dequantizing lookups and 16 FMAs in the row
// kernel; with P = 3, 11 lookups for 128 weights, versus 16 vector decodes
// (shift, mask, convert) and 32 FMAs.
// The words of L rows come from one load with interleaved16 weights; mlx
// order is staged into it a pass at a time (L plain loads and a transpose
// per L words; a gather is much slower). At 2 bits
// the group algebra's terms are bounded by |x_k| (3 |A| + |C|) rather than
// |x_k w_hat_k| (the row kernel avoids that for wider codes); for quantized
// real weights (C = w_min < 0 < w_max = 3 A + C) the two are within a small
// factor, as at 1 bit.
//
// V additionally provides (only when kLutBits > 0):
//   kLutBits              P, with L = 2^P: a table is one vector
//   kLutMaxM2             x rows up to which the kernel takes 2-bit codes
//                         (see use_lut)
//   kLutShare             lane groups (L W rows each) that share each load
//                         of a table: a pass (see lut_task)
//   kLutRowsX             x rows that share each shifted index when M > 1
//                         (see lut_task)
//   I                     a vector of L int32
//   lookup(idx, table)    table[idx mod 2^P] lane by lane
//   lut_add(acc, v)       acc + v with one rounding, in whichever pipes the
//                         lookups and shifts leave free
//   shift_right<S>(idx)   idx >> S (lane by lane)
//   keep_in_register(v)   an empty asm that makes v a register value here
//                         (see lut_block)
//   load_words(p)         the L 32-bit words at p
//   load_words(p, n)      n < L 32-bit words from p, zeros after (the rest unread)
//   store_words(p, v)     the L 32-bit words of v to p
//   store_first(p, v, n)  the first n < L floats of v to p
//   transpose(r)          transposes L vectors r[0..L-1] as an L x L matrix
//   words(f) floats(i)    the same bits as the other type

// Whether the lookup kernel serves B-bit codes on V: 1 and 2 bits; wider
// codes keep the row kernel's dequantize-then-multiply (see rows_tile).
template <class V, int B>
constexpr bool lut_serves() {
  return V::kLutBits > 0 && B <= 2;
}

// Lookups per 32-bit word of packed codes.
template <class V>
constexpr int lut_lookups() {
  return (32 + V::kLutBits - 1) / V::kLutBits;
}

// The tables of one x row: T[(w J + c) L + p] = sum over the codes k of
// word w that share bits with lookup c (bits P c .. P c + P - 1 of the word;
// J = lut_lookups) of x[(32/B) w + k] times the part of code k that index p
// holds: p's bits that fall in code k, at their place value in it. When B
// divides P (AVX-512) every code is whole; AVX2's 3-bit index at 2 bits can
// split a code, whose low bit then counts in one table and its high bit,
// with weight 2, in the next. Bits past 31 do not exist: the shifted index
// reads zeros there, and the entries for them are never read. At 1 bit
// every product is exact (x * 0 or x * 1).
template <class V, int B>
void lut_tables(const float* x, std::int64_t K, float* T) {
  constexpr int L = V::L, P = V::kLutBits, J = lut_lookups<V>(), per_word = 32 / B;
  constexpr int S = (P + 2 * B - 2) / B;  // codes one lookup can share bits with
  static_assert(L == 1 << P, "a table is one vector");
  // part[c][s][p]: what index p of lookup c holds of the lookup's code s
  // (code P c / B + s of the word).
  alignas(64) float part[J][S][L] = {};
  for (int c = 0; c < J; ++c)
    for (int i = 0; i < P && P * c + i < 32; ++i) {
      const int bit = P * c + i, s = bit / B - P * c / B;
      for (int p = 0; p < L; ++p) part[c][s][p] += static_cast<float>(((p >> i) & 1) << (bit % B));
    }
  for (std::int64_t wd = 0; wd < K / per_word; ++wd, T += J * L) {
    const float* xw = x + wd * per_word;
    for (int c = 0; c < J; ++c) {
      const int first = P * c / B, last = (std::min(32, P * c + P) - 1) / B;
      typename V::F t = V::zero();
      for (int k = first; k <= last; ++k) t = V::fma(V::set1(xw[k]), V::load(part[c][k - first]), t);
      V::store(T + c * L, t);
    }
  }
}

struct LutJob {
  const QmmArgs* a;
  const float* T;              // M x table_floats tables of x
  std::int64_t table_floats;   // per x row
  const float* xs;             // M x G group sums of x
  std::int64_t groups_per_task;  // lane groups (L W rows each)
};

// The L words at p, of which only the first n <= L exist.
template <class V>
typename V::I load_lanes(const void* p, int n) {
  return n == V::L ? V::load_words(p) : V::load_words(p, n);
}

// n <= L consecutive stored factors (scales or biases) from element i,
// widened, as the bits of float32 lanes; lanes from n on are zero.
template <class V>
typename V::I row_factors(const void* src, DType dtype, std::int64_t i, int n) {
  if (dtype == DType::float32) return load_lanes<V>(static_cast<const float*>(src) + i, n);
  const auto* h = static_cast<const std::uint16_t*>(src) + i;
  alignas(64) std::uint16_t tail[V::L] = {};  // the widening loads read L values
  if (n < V::L) h = static_cast<const std::uint16_t*>(std::memcpy(tail, h, 2 * static_cast<std::size_t>(n)));
  return V::words(dtype == DType::float16 ? V::load_f16(h) : V::load_bf16(h));
}

// One group's factors A and C of L rows (one per lane) from the bits of
// their widened scales s and biases b (b unused in symmetric mode, where
// A = 2d and C = -d, both exact).
template <class V>
void group_factors(bool affine, typename V::I s, typename V::I b, typename V::F& A, typename V::F& C) {
  const typename V::F d = V::floats(s);
  A = affine ? d : V::add(d, d);
  C = affine ? V::floats(b) : V::fma(d, V::set1(-1.0f), V::zero());
}

// The factors of the `rows` (<= L) W rows from n0 (one lane group), one
// row per lane: fac[2L g .. 2L g + L - 1] = A of group g, fac[2L g + L ..
// 2L g + 2L - 1] = C; lanes past `rows` hold 0. Made per lane group from
// the stored scales, once for all the x rows, rather than for the whole
// matrix per call (the lookup kernel then allocates nothing of size N x G,
// which cost 30-60% of a 4096 x 4096 M = 1 call with float16 or symmetric
// scales). Both layouts thus leave lut_block the same group end: two loads.
// interleaved16 (n0 a multiple of L): group g's factors of a 16-row block's
// rows sit side by side, one block row count apart from group to group.
// mlx order: the rows' factors sit G apart and are transposed with vector
// shuffles (gathering 2L scalars at every group's end cost ~20% of the
// kernel).
template <class V, bool Interleaved>
void lut_factors(const QmmArgs& a, std::int64_t n0, int rows, std::int64_t G, float* fac) {
  constexpr int L = V::L;
  const bool affine = a.spec.mode == Mode::affine;
  using I = typename V::I;
  auto store = [&](std::int64_t g, I s, I b) {
    typename V::F A, C;
    group_factors<V>(affine, s, b, A, C);
    V::store(fac + 2 * L * g, A);
    V::store(fac + 2 * L * g + L, C);
  };
  if constexpr (Interleaved) {
    const std::int64_t block = n0 / 16 * 16, step = std::min<std::int64_t>(16, a.N - block);
    for (std::int64_t g = 0; g < G; ++g) {
      const std::int64_t at = block * G + g * step + (n0 - block);
      const I s = row_factors<V>(a.scales, a.scale_dtype, at, rows);
      store(g, s, affine ? row_factors<V>(a.biases, a.scale_dtype, at, rows) : s);
    }
  } else {
    auto transposed = [&](const void* src, std::int64_t g0, int ng, I r[L]) {  // r[d]: group g0 + d
      for (int i = 0; i < L; ++i)
        r[i] = i < rows ? row_factors<V>(src, a.scale_dtype, (n0 + i) * G + g0, ng) : V::load_words(src, 0);
      V::transpose(r);
    };
    for (std::int64_t g0 = 0; g0 < G; g0 += L) {
      const int ng = static_cast<int>(std::min<std::int64_t>(L, G - g0));
      I s[L], b[L];
      transposed(a.scales, g0, ng, s);
      if (affine) transposed(a.biases, g0, ng, b);
      for (int d = 0; d < ng; ++d) store(g0 + d, s[d], affine ? b[d] : s[d]);
    }
  }
}

// Lane groups (L W rows each) that share each load of a table: a pass of the
// lookup kernel is V::kLutShare lane groups (four on AVX-512 and AVX2; more
// do not fit in the registers).
template <class V>
constexpr int lut_share() {
  return V::kLutShare;
}

// Lane groups per pass of V::kLutRowsX x rows (see lut_block), so that the
// pass holds as many accumulators as lut_share groups of one x row.
template <class V>
constexpr int lut_share_rows() {
  return std::max(1, lut_share<V>() / V::kLutRowsX);
}

// Accumulators per lane group and x row: two with four lane groups (eight
// independent chains, as many as the registers hold), else four; the lookups
// of one word would otherwise wait on each other's additions (V::lut_add).
// The same for every pass, so that no result depends on how rows are batched.
template <class V>
constexpr int lut_accumulators() {
  return lut_share<V>() >= 4 ? 2 : 4;
}

// Into L2 (prefetcht1 on x86): the pass before it is still using L1 for its
// own rows and the tables.
inline void prefetch(const void* p) { __builtin_prefetch(p, 0, 2); }

// Prefetches the bytes [p, p + n) at once: what no earlier pass prefetched
// (a task's first pass) and the small factor arrays.
inline void prefetch_range(const void* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; i += 64) prefetch(static_cast<const char*>(p) + i);
}

// A pass prefetches the next pass's rows of the caller's W while it works,
// as they lie in memory (a pass's rows are one range in either layout): per
// word step, a line for each 16-row block, so the prefetches advance as fast
// as the pass consumes its own rows and the hardware prefetcher, which loses
// its streams at every 4 KiB page (and cannot follow mlx order's 64 row
// streams at all), is not relied on. Null where the task has no next pass.
struct LutPrefetch {
  const std::uint8_t* next = nullptr;  // the next pass's first row
  int first_block = 0;                 // the pass's 16-row block this call starts at
};

// R lane groups of L W rows from n0 against the XR x rows from m, W in
// interleaved16 order (n0 a multiple of 16): lane group r is rows L r .. L r
// + L - 1 of the 16-row block that holds them; one load per word and lane
// group. Table J w + c serves lookup c of word w, whatever B is. The x rows
// share each shifted index (and each word load): one shift serves XR
// lookups. Each lane group and x row gets the same arithmetic whatever R and
// XR are, so the results do not depend on how the groups and rows are
// batched (nor on the threads or on M). Only the first `rows` of the L R W
// rows exist (fewer only at the end of W): the others read as zero bits and
// are not stored. Full: all L R rows exist, known at compile time, so the hot
// loop loads words without a lane count check. Lane group r's factors are in
// fac[r] (lut_factors).
template <class V, int B, int GS, int R, int XR, bool Full>
void lut_block(const LutJob& job, const std::uint32_t* wq, std::int64_t n0, int rows, std::int64_t m,
               float* const* fac, const LutPrefetch& pf) {
  using F = typename V::F;
  using I = typename V::I;
  constexpr int L = V::L, P = V::kLutBits, J = lut_lookups<V>();
  const QmmArgs& a = *job.a;
  const std::int64_t K = a.K, G = K / GS, row_bytes = K * B / 8, words = K * B / 32;
  const float* tables = job.T + m * job.table_floats;  // x row m + x: x table_floats on
  const float* xs = job.xs + m * G;
  constexpr int words_per_group = GS * B / 32;
  const auto* w = reinterpret_cast<const std::uint8_t*>(wq) + n0 * row_bytes;
  F tot[XR][R];
  for (auto& tx : tot)
    for (F& t : tx) t = V::zero();
  constexpr int kAcc = lut_accumulators<V>();
  int lanes[R];  // rows of lane group r (1 .. L)
  // The byte offset of lane group r's word 0; from one word to the next,
  // `step` (the rows of its 16-row block).
  std::int64_t word_at[R], step[R];
  for (int r = 0; r < R; ++r) {
    lanes[r] = Full ? L : std::min(L, rows - L * r);
    const int block = L * r / 16 * 16, in_block = L * r - block;
    word_at[r] = block * row_bytes + 4 * in_block;
    step[r] = std::min(16, rows - block);
  }
  constexpr int blocks = lut_share<V>() * L / 16;  // 16-row blocks per pass
  for (std::int64_t g = 0, wd = 0; g < G; ++g) {
    F acc[XR][R][kAcc];
    for (auto& ax : acc)
      for (auto& ar : ax)
        for (F& v : ar) v = V::zero();
    for (int i = 0; i < words_per_group; ++i, ++wd) {
      if (pf.next)
        for (int r = 0; r < R; r += 16 / std::min(L, 16))  // a line per 16-row block (see LutPrefetch)
          prefetch(pf.next + 64 * (blocks * wd + pf.first_block + L * r / 16));
      I q[R];
      for (int r = 0; r < R; ++r) q[r] = load_lanes<V>(w + word_at[r] + 4 * wd * step[r], lanes[r]);
      // Lookup c of every lane group and x row. Each index is shifted from
      // the word itself (no chain of shifts), and each table is loaded once
      // into a register for its R lookups: GCC 12 otherwise folds the load
      // into every lookup (40% slower on Zen 3).
      const float* T = tables + wd * J * L;
      for_each_index<J>([&](auto ci) ONEBIT_ALWAYS_INLINE {
        constexpr int c = decltype(ci)::value;
        F table[XR];
        for (int x = 0; x < XR; ++x) {
          F t = V::load(T + x * job.table_floats + L * c);
          V::keep_in_register(t);
          table[x] = t;
        }
        for (int r = 0; r < R; ++r) {
          const I idx_c = V::template shift_right<P * c>(q[r]);
          for (int x = 0; x < XR; ++x)
            acc[x][r][c % kAcc] = V::lut_add(acc[x][r][c % kAcc], V::lookup(idx_c, table[x]));
        }
      });
    }
    for (int r = 0; r < R; ++r) {
      const F A = V::load(fac[r] + 2 * L * g), C = V::load(fac[r] + 2 * L * g + L);
      for (int x = 0; x < XR; ++x) {
        F sum = acc[x][r][0];
        for (int i = 1; i < kAcc; ++i) sum = V::add(sum, acc[x][r][i]);
        tot[x][r] = V::fma(sum, A, tot[x][r]);
        tot[x][r] = V::fma(C, V::set1(xs[x * G + g]), tot[x][r]);
      }
    }
  }
  for (int x = 0; x < XR; ++x)
    for (int r = 0; r < R; ++r) {
      float* out = a.out + (m + x) * a.N + n0 + L * r;
      if (lanes[r] == L)
        V::store(out, tot[x][r]);
      else
        V::store_first(out, tot[x][r], lanes[r]);
    }
}

// lut_block for R = 1 .. RMax lane groups, R known at run time only at the
// end of a task's range.
template <class V, int B, int GS, int XR, int RMax>
void lut_blocks(int groups, const LutJob& job, const std::uint32_t* wq, std::int64_t n0, int rows,
                std::int64_t m, float* const* fac, const LutPrefetch& pf) {
  if constexpr (RMax > 1) {
    if (groups < RMax) return lut_blocks<V, B, GS, XR, RMax - 1>(groups, job, wq, n0, rows, m, fac, pf);
  }
  if (rows == V::L * RMax)
    lut_block<V, B, GS, RMax, XR, true>(job, wq, n0, rows, m, fac, pf);
  else
    lut_block<V, B, GS, RMax, XR, false>(job, wq, n0, rows, m, fac, pf);
}

// The `rows` (at most a pass) mlx-order W rows at src, `words` 32-bit words
// each, into interleaved16 order at dst: L x L tiles of words transposed in
// registers (two per 16-row block with AVX2's L = 8); a block of fewer than
// 16 rows (only at the end of W) word by word.
template <class V>
void stage_pass(const std::uint8_t* src, int rows, std::int64_t words, std::uint32_t* dst) {
  constexpr int L = V::L;
  using I = typename V::I;
  for (int block = 0; block < rows; block += 16) {
    const int r = std::min(16, rows - block);
    const std::uint8_t* in = src + 4 * block * words;
    std::uint32_t* out = dst + block * words;
    if (r < 16) {
      for (std::int64_t wd = 0; wd < words; ++wd)
        for (int n = 0; n < r; ++n) std::memcpy(out + wd * r + n, in + 4 * (n * words + wd), 4);
      continue;
    }
    for (int h = 0; h < 16; h += L)
      for (std::int64_t w0 = 0; w0 < words; w0 += L) {
        const int nw = static_cast<int>(std::min<std::int64_t>(L, words - w0));
        I v[L];
        for (int j = 0; j < L; ++j) v[j] = load_lanes<V>(in + 4 * ((h + j) * words + w0), nw);
        V::transpose(v);
        for (int d = 0; d < nw; ++d) V::store_words(out + (w0 + d) * 16 + h, v[d]);
      }
  }
}

// One task: passes of lut_share lane groups, each against every x row
// (their packed rows stay in L1/L2). Interleaved: W is read in place.
// Otherwise (mlx order) each pass's rows are first staged into interleaved16
// order in a per-thread buffer (stage_pass), so both layouts run the same
// loop; the pass before prefetches them.
template <class V, int B, int GS, bool Interleaved>
void lut_task(void* ctx, std::int64_t t) {
  constexpr int L = V::L, share = lut_share<V>();
  // interleaved16 blocks must not straddle passes.
  static_assert(share * L % 16 == 0, "a pass is whole 16-row blocks");
  const auto& job = *static_cast<const LutJob*>(ctx);
  const QmmArgs& a = *job.a;
  const std::int64_t N = a.N, groups = (N + L - 1) / L, G = a.K / GS, words = a.K * B / 32;
  const std::int64_t b1 = std::min(groups, (t + 1) * job.groups_per_task);
  float* const fac_all = scratch<V, 1>(static_cast<std::size_t>(share * 2 * L * G));
  float* fac[share];
  for (int r = 0; r < share; ++r) fac[r] = fac_all + r * 2 * L * G;
  std::uint32_t* staged =
      Interleaved ? nullptr : scratch<V, 2, std::uint32_t>(static_cast<std::size_t>(share * L * words));
  const auto* w = reinterpret_cast<const std::uint8_t*>(a.wq);
  // A pass's factors, as a byte range of the scales (and biases): in either
  // layout rows [n, n + rows) hold elements [n G, (n + rows) G).
  const std::int64_t factor_bytes = G * static_cast<std::int64_t>(dtype_size(a.scale_dtype));
  auto prefetch_pass = [&](std::int64_t b, bool words_too) {
    const std::int64_t n = L * b, rows = std::min<std::int64_t>(share * L, N - n);
    if (rows <= 0) return;
    if (words_too) prefetch_range(w + 4 * n * words, 4 * rows * words);
    prefetch_range(static_cast<const char*>(a.scales) + n * factor_bytes, rows * factor_bytes);
    if (a.biases) prefetch_range(static_cast<const char*>(a.biases) + n * factor_bytes, rows * factor_bytes);
  };
  if (t * job.groups_per_task < b1) prefetch_pass(t * job.groups_per_task, true);
  constexpr int XR = V::kLutRowsX, RX = lut_share_rows<V>();
  static_assert(RX * L % 16 == 0, "a pass is whole 16-row blocks");
  for (std::int64_t b = t * job.groups_per_task; b < b1; b += share) {
    const int rows = static_cast<int>(std::min(L * std::min<std::int64_t>(share, b1 - b), N - L * b));
    const int R = (rows + L - 1) / L;
    for (int r = 0; r < R; ++r) lut_factors<V, Interleaved>(a, (b + r) * L, std::min(L, rows - L * r), G, fac[r]);
    LutPrefetch pf;  // the next pass in this task, if any: its factors now, its words in lut_block
    if (b + share < b1) {
      prefetch_pass(b + share, false);
      pf.next = w + 4 * L * (b + share) * words;
    }
    // Where this pass's rows are read: W itself, or the staged copy (whose
    // row 0 is row L b).
    const std::uint32_t* wq = a.wq;
    std::int64_t n0 = L * b;
    if constexpr (!Interleaved) {
      stage_pass<V>(w + 4 * L * b * words, rows, words, staged);
      wq = staged;
      n0 = 0;
    }
    QmmArgs at = a;  // the output from the pass's first row on
    at.out = a.out + L * b - n0;
    LutJob pass = job;
    pass.a = &at;
    std::int64_t m = 0;
    if constexpr (XR > 1) {  // XR x rows against RX lane groups at a time
      for (; m + XR <= a.M; m += XR)
        for (int r0 = 0; r0 < R; r0 += RX)
          lut_blocks<V, B, GS, XR, RX>(std::min(RX, R - r0), pass, wq, n0 + r0 * L, std::min(RX * L, rows - L * r0), m,
                                       fac + r0, LutPrefetch{pf.next, L * r0 / 16});
    }
    for (; m < a.M; ++m) lut_blocks<V, B, GS, 1, share>(R, pass, wq, n0, rows, m, fac, pf);
  }
}

// The tables take K * B/32 * J * L floats per x row (at 1 bit, 16 K bytes
// with AVX-512, 11 K with AVX2); the rows go through in chunks whose tables
// fit this budget (allocated per call), each chunk reading W once more.
// Measured on Zen 4, two threads, 1 bit, interleaved16, budgets of 1, 2 and
// 8 MiB: 4096 x 11008 at M = 32 7.4, 6.6 and 9.4 ms, at M = 128 28.5, 27.8
// and 27.8 ms; 4096 x 4096 at M = 512 39.3, 39.0 and 40.5 ms.
constexpr std::int64_t kLutTableBytes = 2 << 20;

template <class V>
bool use_lut(const QmmArgs& a) {
  if (!a.transpose) return false;
  // At 1 bit the lookups beat the panel kernel's FMAs at any M (4096 x
  // 4096, two threads, interleaved16: AVX-512 on Zen 4, M = 128 9.7 vs
  // 25.9 ms, M = 512 39 vs 93 ms; AVX2 on Zen 3, M = 8 2.8 vs 6.6 ms,
  // M = 32 10 vs 23, M = 128 41 vs 49, M = 512 169 vs 208), so they take
  // every M, chunk by chunk. At 2 bits the row kernel's tile decodes each
  // weight vector once for several x rows, which beats the per-row lookups
  // from M = kLutMaxM2 + 1 on (4096 x 4096, one thread, lookups against
  // rows: AVX-512 on Zen 4, M = 2 0.88 vs 1.29 ms, M = 3 1.4 vs 1.0 ms;
  // AVX2 on Zen 3, M = 2 4.0-5.7 vs 3.0-3.6 ms).
  return a.spec.bits == 1 || a.M <= V::kLutMaxM2;
}

// Needs no Factors: lut_factors makes them per lane group of rows.
template <class V, int B>
void qmm_lut(const QmmArgs& a) {
  const int gs = a.spec.group_size;
  const std::int64_t table_floats = a.K * B / 32 * lut_lookups<V>() * V::L, groups = (a.N + V::L - 1) / V::L;
  const std::int64_t chunk = std::clamp<std::int64_t>(kLutTableBytes / (4 * table_floats), 1, a.M);
  std::vector<float> T(static_cast<std::size_t>(chunk * table_floats));
  std::vector<float> xs(static_cast<std::size_t>(chunk * (a.K / gs)));
  const bool interleaved = a.layout == WeightLayout::interleaved16;
  const int share = lut_share<V>();
  for (std::int64_t m0 = 0; m0 < a.M; m0 += chunk) {
    QmmArgs c = a;  // x rows m0 .. m0 + chunk
    c.M = std::min(chunk, a.M - m0);
    c.x = a.x + m0 * a.K;
    c.out = a.out + m0 * a.N;
    for (std::int64_t m = 0; m < c.M; ++m) lut_tables<V, B>(c.x + m * a.K, a.K, T.data() + m * table_floats);
    group_sums<V>(c.x, c.M, a.K, gs, xs.data());
    LutJob job{&c, T.data(), table_floats, xs.data(), split(groups, share, 1024 / V::L)};
    visit<format::kGroupSizes>(gs, [&](auto g) {
      constexpr int GS = decltype(g)::value;
      parallel_for((groups + job.groups_per_task - 1) / job.groups_per_task,
                   interleaved ? lut_task<V, B, GS, true> : lut_task<V, B, GS, false>, &job);
    });
  }
}

// ------------------------------------------------------------------ cols

// RM rows of x against CV column vectors (all inside one group) of W,
// packed along N, over all of K. A and C point at the group's column of the
// K x G factor tables.
template <class V, int B, int RM, int CV>
void cols_tile(const float* x, const std::uint8_t* w, std::int64_t row_bytes, const float* A,
               const float* C, std::int64_t G, float* out, std::int64_t K, std::int64_t N) {
  using F = typename V::F;
  F acc[RM][CV];
  for (auto& r : acc)
    for (F& t : r) t = V::zero();
  float bias[RM] = {};  // 1 bit: sum_k x_k * C_k
  for (std::int64_t k = 0; k < K; ++k) {
    const float ak = A[k * G], ck = C[k * G];
    const std::uint8_t* row = w + k * row_bytes;
    if constexpr (B == 1) {
      // x_k * A where the bit is set; the bias term separately.
      F xa[RM];
      for (int m = 0; m < RM; ++m) {
        const float xk = x[m * K + k];
        xa[m] = V::set1(xk * ak);
        bias[m] += xk * ck;
      }
      for (int v = 0; v < CV; ++v) {
        const auto mk = V::mask(row, v);
        for (int m = 0; m < RM; ++m)
          acc[m][v] = (m + v) & 1 ? V::template mask_add<1>(acc[m][v], mk, xa[m])
                                  : V::template mask_add<0>(acc[m][v], mk, xa[m]);
      }
    } else {
      // Wider codes: dequantize, then multiply (see rows_tile).
      F xk[RM];
      for (int m = 0; m < RM; ++m) xk[m] = V::set1(x[m * K + k]);
      const F a = V::set1(ak), c = V::set1(ck);
      for (int v = 0; v < CV; ++v) {
        const F wv = V::fma(V::template codes<B>(row + v * (V::L * B / 8)), a, c);
        for (int m = 0; m < RM; ++m) acc[m][v] = V::fma(wv, xk[m], acc[m][v]);
      }
    }
  }
  for (int m = 0; m < RM; ++m) {
    const F b = V::set1(bias[m]);
    for (int v = 0; v < CV; ++v) V::store(out + m * N + v * V::L, V::add(acc[m][v], b));
  }
}

struct ColsJob {
  const QmmArgs* a;
  const Factors* f;
  int vecs;  // column vectors per task (a divisor of the group's)
};

template <class V, int B, int CV>
void cols_task(void* ctx, std::int64_t t) {
  const auto& job = *static_cast<const ColsJob*>(ctx);
  const QmmArgs& a = *job.a;
  const int gs = a.spec.group_size;
  const std::int64_t K = a.K, N = a.N, G = N / gs, row_bytes = N * B / 8;
  const std::int64_t n0 = t * CV * V::L, g = n0 / gs;
  const std::uint8_t* w = reinterpret_cast<const std::uint8_t*>(a.wq) + n0 * B / 8;
  auto tile = [&](auto rm, std::int64_t m) {
    cols_tile<V, B, decltype(rm)::value, CV>(a.x + m * K, w, row_bytes, job.f->A + g, job.f->C + g,
                                             G, a.out + m * N + n0, K, N);
  };
  std::int64_t m = 0;
  for (; m + V::kColRows <= a.M; m += V::kColRows) tile(std::integral_constant<int, V::kColRows>{}, m);
  for (; m < a.M; ++m) tile(std::integral_constant<int, 1>{}, m);
}

template <class V, int B>
void qmm_cols(const QmmArgs& a, const Factors& f) {
  // Column vectors per task: a group, or a part of it no wider than kColVecs.
  constexpr int cv = V::kColVecs;
  const int vpg = a.spec.group_size / V::L;
  ColsJob job{&a, &f, std::min(vpg, cv)};
  const std::int64_t tasks = a.N / (job.vecs * V::L);
  // Every supported group size is a multiple of 32 floats, so vpg and
  // kColVecs are powers of two and vecs is one of these.
  switch (job.vecs) {
    case cv: return parallel_for(tasks, cols_task<V, B, cv>, &job);
    case cv / 2: return parallel_for(tasks, cols_task<V, B, cv / 2>, &job);
    default: return parallel_for(tasks, cols_task<V, B, cv / 4>, &job);
  }
}

// ------------------------------------------------------------------ panel

// K depth of a panel: 2L columns x kc floats = 16 KiB, half of a 32 KiB L1d,
// leaving room for the kMR x rows being broadcast.
template <class V>
constexpr int panel_depth() {
  return 16384 / (2 * V::L * static_cast<int>(sizeof(float)));
}

// L weights starting at element e (a multiple of L) of a packed row.
template <class V, int B>
typename V::F dequant(const std::uint8_t* row, std::int64_t e, float a, float c) {
  if constexpr (B == 1) {
    return V::select(V::mask(row, e / V::L), V::set1(c), V::set1(a + c));
  } else if constexpr (has_vector_decode(B)) {
    return V::fma(V::template codes<B>(row + e * B / 8), V::set1(a), V::set1(c));
  } else {
    alignas(64) float q[V::L];
    for (int i = 0; i < V::L; ++i) q[i] = static_cast<float>(format::read_code(row, e + i, B));
    return V::fma(V::load(q), V::set1(a), V::set1(c));
  }
}

// P[kk][j] = W_hat(k0 + kk, n0 + j) for kk < kc, j < nr; zero for j >= nr.
template <class V, int B>
void fill_panel(const QmmArgs& a, const Factors& f, std::int64_t k0, int kc, std::int64_t n0,
                int nr, float* P) {
  constexpr int NR = 2 * V::L;
  const int gs = a.spec.group_size;
  const auto* w = reinterpret_cast<const std::uint8_t*>(a.wq);
  if (!a.transpose) {
    // W rows are k, packed along n: a panel row is two vectors of one row
    // (n0 is a multiple of 2L and N of the group size, so no tail).
    const std::int64_t G = a.N / gs, row_bytes = a.N * B / 8, g = n0 / gs;
    for (int kk = 0; kk < kc; ++kk) {
      const std::int64_t k = k0 + kk;
      const std::uint8_t* row = w + k * row_bytes;
      const float ak = f.A[k * G + g], ck = f.C[k * G + g];
      V::store(P + kk * NR, dequant<V, B>(row, n0, ak, ck));
      V::store(P + kk * NR + V::L, dequant<V, B>(row, n0 + V::L, ak, ck));
    }
    return;
  }
  // W rows are n, packed along k: dequantize along each row, then scatter
  // into the panel's columns (a transpose, paid once per panel and amortised
  // over every x row that uses it).
  const std::int64_t G = a.K / gs, row_bytes = a.K * B / 8;
  alignas(64) float tmp[V::L];
  for (int j = 0; j < nr; ++j) {
    const std::int64_t n = n0 + j;
    const std::uint8_t* row = w + n * row_bytes;
    for (int kk = 0; kk < kc; kk += V::L) {
      const std::int64_t k = k0 + kk, gi = n * G + k / gs;
      V::store(tmp, dequant<V, B>(row, k, f.A[gi], f.C[gi]));
      for (int i = 0; i < V::L; ++i) P[(kk + i) * NR + j] = tmp[i];
    }
  }
  for (int j = nr; j < NR; ++j)
    for (int kk = 0; kk < kc; ++kk) P[kk * NR + j] = 0.0f;
}

// out[MR x nr] (+)= x[MR x kc] @ P[kc x 2L]: MR x 2 accumulators, one
// broadcast of x per row and two panel loads per k.
template <class V, int MR>
void micro(const float* x, std::int64_t ldx, const float* P, int kc, float* out, std::int64_t ldo,
           bool accumulate_out, int nr) {
  using F = typename V::F;
  constexpr int NR = 2 * V::L;
  F c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = V::zero();
  for (int k = 0; k < kc; ++k) {
    const F b0 = V::load(P + k * NR), b1 = V::load(P + k * NR + V::L);
    for (int r = 0; r < MR; ++r) {
      const F xr = V::set1(x[r * ldx + k]);
      c0[r] = V::fma(xr, b0, c0[r]);
      c1[r] = V::fma(xr, b1, c1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* o = out + r * ldo;
    if (nr == NR) {
      if (accumulate_out) {
        c0[r] = V::add(c0[r], V::load(o));
        c1[r] = V::add(c1[r], V::load(o + V::L));
      }
      V::store(o, c0[r]);
      V::store(o + V::L, c1[r]);
    } else {
      alignas(64) float tmp[NR];
      V::store(tmp, c0[r]);
      V::store(tmp + V::L, c1[r]);
      for (int j = 0; j < nr; ++j) o[j] = (accumulate_out ? o[j] : 0.0f) + tmp[j];
    }
  }
}

// The micro-kernel for mr <= R (at most kMR) rows, R known at compile time.
template <class V, int R = V::kMR>
void micro_rows(int mr, const float* x, std::int64_t ldx, const float* P, int kc, float* out,
                std::int64_t ldo, bool accumulate_out, int nr) {
  if constexpr (R > 1)
    if (mr < R) return micro_rows<V, R - 1>(mr, x, ldx, P, kc, out, ldo, accumulate_out, nr);
  micro<V, R>(x, ldx, P, kc, out, ldo, accumulate_out, nr);
}

// Panels a task dequantizes per K step and multiplies by the same x rows:
// each kMR-row slice of x (kMR x kc floats, L1-resident) then serves this
// many panels (128 KiB, in L2) before the next slice is read, instead of
// one, so x comes from L3 or memory once per kPanels panels. Zen 3, AVX2,
// one thread, 4096 x 4096 at M = 512, fastest of 8 alternating calls:
// 2 bits 370 -> 280 ms, 4 bits 376 -> 295 ms against one panel per task
// (4, 8 and 16 panels within noise of each other; on two threads, one
// panel against eight was within the machine's noise).
constexpr int kPanels = 8;

struct PanelJob {
  const QmmArgs* a;
  const Factors* f;
  std::int64_t n_tasks, m_block;  // n_tasks: tasks along N, kPanels panels each
};

// One task: up to kPanels x 2L output columns x up to m_block x rows, over
// all of K.
template <class V, int B>
void panel_task(void* ctx, std::int64_t t) {
  const auto& job = *static_cast<const PanelJob*>(ctx);
  const QmmArgs& a = *job.a;
  constexpr int NR = 2 * V::L, KC = panel_depth<V>();
  const std::int64_t n0 = (t % job.n_tasks) * kPanels * NR, m0 = (t / job.n_tasks) * job.m_block;
  const std::int64_t m1 = std::min(a.M, m0 + job.m_block);
  const int panels = static_cast<int>(std::min<std::int64_t>(kPanels, (a.N - n0 + NR - 1) / NR));
  float* const P = scratch<V, 0>(static_cast<std::size_t>(kPanels) * KC * NR);
  int nr[kPanels];
  for (int p = 0; p < panels; ++p) nr[p] = static_cast<int>(std::min<std::int64_t>(NR, a.N - n0 - p * NR));
  for (std::int64_t k0 = 0; k0 < a.K; k0 += KC) {
    const int kc = static_cast<int>(std::min<std::int64_t>(KC, a.K - k0));
    for (int p = 0; p < panels; ++p) fill_panel<V, B>(a, *job.f, k0, kc, n0 + p * NR, nr[p], P + p * KC * NR);
    for (std::int64_t m = m0; m < m1; m += V::kMR) {
      const int mr = static_cast<int>(std::min<std::int64_t>(V::kMR, m1 - m));
      const float* x = a.x + m * a.K + k0;
      for (int p = 0; p < panels; ++p)
        micro_rows<V>(mr, x, a.K, P + p * KC * NR, kc, a.out + m * a.N + n0 + p * NR, a.N, k0 > 0, nr[p]);
    }
  }
}

template <class V, int B>
void qmm_panel(const QmmArgs& a, const Factors& f) {
  constexpr int NR = 2 * V::L;
  // Rows of x per task: all of them unless the N tasks alone are too few
  // to keep every thread busy.
  PanelJob job{&a, &f, (a.N + kPanels * NR - 1) / (kPanels * NR), a.M};
  const std::int64_t want = 4 * static_cast<std::int64_t>(pool_threads());
  if (job.n_tasks < want) {
    const std::int64_t m_tasks = (want + job.n_tasks - 1) / job.n_tasks;
    job.m_block = std::max<std::int64_t>(V::kMR, (a.M + m_tasks - 1) / m_tasks / V::kMR * V::kMR);
  }
  const std::int64_t m_blocks = (a.M + job.m_block - 1) / job.m_block;
  parallel_for(job.n_tasks * m_blocks, panel_task<V, B>, &job);
}

// ------------------------------------------------------------------ entry

// See onebit.h (cpu_preferred_layout): interleaved16 where the lookup
// kernel serves every M (1 bit); at 2 bits it serves only M <= kLutMaxM2 and
// the row kernel would pay for a slab conversion on every other call.
template <class V>
WeightLayout preferred_layout(const QuantSpec& spec) {
  return lut_serves<V, 1>() && spec.bits == 1 ? WeightLayout::interleaved16 : WeightLayout::mlx;
}

template <class V>
void qmm(const QmmArgs& a) {
  if (a.M == 0 || a.N == 0) return;
  if (a.K == 0) {  // an empty sum; the kernels below assume at least one group
    std::fill(a.out, a.out + a.M * a.N, 0.0f);
    return;
  }
  visit<format::kBits>(a.spec.bits, [&](auto b) {
    constexpr int B = decltype(b)::value;
    if constexpr (lut_serves<V, B>()) {
      if (use_lut<V>(a)) return qmm_lut<V, B>(a);
    }
    // Only the lookup kernel reads interleaved16 W.
    if (a.layout != WeightLayout::mlx) return run_deinterleaved(a, qmm<V>);
    Factors f;
    make_factors<V>(a, f);
    if constexpr (has_vector_decode(B)) {
      if (small_m(a)) return a.transpose ? qmm_rows<V, B>(a, f) : qmm_cols<V, B>(a, f);
    }
    qmm_panel<V, B>(a, f);
  });
}

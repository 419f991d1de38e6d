// The row kernel (CpuKernel::rows): transpose=True, small M, bits 1/2/4/8.
// Part of qmm_kernels.h: included only through it.
//
// For 1 bit, per group of W row n: sum_k w_hat_k x_k = A * sum_k q_k x_k +
// C * sum_k x_k, with the group sums of x computed once per call and shared
// by all N rows, and sum q_k x_k a masked add straight from the packed bits
// (no decode at all). Wider codes are decoded and dequantized (w_hat = A q +
// C) in registers, then multiplied; on the ISAs with a register table
// lookup, 2- and 4-bit codes are decoded a byte per lane, and dequantized by
// a lookup in the group's table of 2^B values where it is wide enough (see
// byte_decode). Several W rows share each load of x and several x rows share
// each decoded weight vector.

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
// decode.
template <class V, int B, int GS>
constexpr bool byte_decode() {
  return (B == 2 || B == 4) && V::kTune.lut_bits > 0 && V::L * (8 / B) <= GS;
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
      // bits; x is in byte order (see byte_decode).
      constexpr int L = V::L, per_byte = 8 / B;
      constexpr bool by_lookup = B <= V::kTune.lut_bits;
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

// x rows [m, m + rm), rm <= RM (at most rows_tile_m): one tile of rm x rows_tile_n
// W rows, or for a single x row rows_m1 W rows at a time (the M = 1 kernel).
template <class V, int B, int GS, int RM = V::kTune.rows_tile_m>
void rows_block(int rm, const RowsJob& job, std::int64_t m, std::int64_t n0, std::int64_t nr) {
  if constexpr (RM == 1) {
    rows_span<V, B, GS, 1, V::kTune.rows_m1>(job, m, n0, nr);
  } else {
    if (rm < RM) return rows_block<V, B, GS, RM - 1>(rm, job, m, n0, nr);
    rows_span<V, B, GS, RM, V::kTune.rows_tile_n>(job, m, n0, nr);
  }
}

// One task: a block of W rows against every x row. The block (at most a
// few hundred rows of packed weights) stays in cache while x streams by.
template <class V, int B, int GS>
void rows_task(void* ctx, std::int64_t t) {
  const auto& job = *static_cast<const RowsJob*>(ctx);
  const QmmArgs& a = *job.a;
  const std::int64_t n0 = t * job.rows_per_task, nr = std::min(job.rows_per_task, a.N - n0);
  for (std::int64_t m = 0; m < a.M; m += V::kTune.rows_tile_m)
    rows_block<V, B, GS>(static_cast<int>(std::min<std::int64_t>(V::kTune.rows_tile_m, a.M - m)), job, m, n0, nr);
}

template <class V, int B>
void qmm_rows(const QmmArgs& a, const Factors& f) {
  const int gs = a.spec.group_size;
  std::vector<float> xs(static_cast<std::size_t>(a.M * (a.K / gs)));
  group_sums<V>(a.x, a.M, a.K, gs, xs.data());
  RowsJob job{&a, &f, nullptr, xs.data(), split(a.N, V::kTune.rows_tile_n, 512)};
  const std::int64_t tasks = (a.N + job.rows_per_task - 1) / job.rows_per_task;
  visit<format::kGroupSizes>(gs, [&](auto g) {
    constexpr int GS = decltype(g)::value;
    std::vector<float> x;
    job.x = rows_x<V, B, GS>(a, x);
    parallel_for(tasks, rows_task<V, B, GS>, &job);
  });
}


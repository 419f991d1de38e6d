// The lookup kernel (CpuKernel::lut): transpose=True, 1 bit at any M and 2
// bits at small M, on ISAs with an in-register table lookup. The only kernel
// that reads interleaved16 weights in place. Part of qmm_kernels.h: included
// only through it.

// transpose=True, 1 bit at any M and 2 bits to M = lut_max_m_2bit, for ISAs with an
// in-register table lookup of a vector of L = 2^P floats by a P-bit index
// per lane (kTune.lut_bits = P: AVX-512's vpermps, P = 4; AVX2's vpermps,
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
// order is staged into it (L plain loads and a transpose per L words; a
// gather is much slower), L words at a time at M = 1, a pass at a time above. At 2 bits
// the group algebra's terms are bounded by |x_k| (3 |A| + |C|) rather than
// |x_k w_hat_k| (the row kernel avoids that for wider codes); for quantized
// real weights (C = w_min < 0 < w_max = 3 A + C) the two are within a small
// factor, as at 1 bit.

// interleaved16's rows per block (a pass is whole blocks).
constexpr int kBlock = static_cast<int>(layout::kBlockRows);

// Lookups per 32-bit word of packed codes.
template <class V>
constexpr int lut_lookups() {
  return (32 + V::kTune.lut_bits - 1) / V::kTune.lut_bits;
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
  constexpr int L = V::L, P = V::kTune.lut_bits, J = lut_lookups<V>(), per_word = 32 / B;
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

// The tables of the M rows of x of a (M x table_floats floats at T).
template <class V, int B>
void lut_tables_rows(const QmmArgs& a, std::int64_t table_floats, float* T) {
  for (std::int64_t m = 0; m < a.M; ++m) lut_tables<V, B>(a.x + m * a.K, a.K, T + m * table_floats);
}

struct LutJob {
  const QmmArgs* a;
  const float* T;              // M x table_floats tables of x, or null: each thread's own
  std::int64_t table_floats;   // per x row
  const float* xs;             // M x G group sums of x
  std::int64_t groups_per_task;  // lane groups (L W rows each)
  std::uint64_t serial;        // where T is null: this job's number (thread_tables)
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
    const std::int64_t block = n0 / kBlock * kBlock, step = std::min<std::int64_t>(kBlock, a.N - block);
    for (std::int64_t g = 0; g < G; ++g) {
      const std::int64_t at = block * G + g * step + (n0 - block);
      const I s = row_factors<V>(a.scales, a.scale_dtype, at, rows);
      store(g, s, affine ? row_factors<V>(a.biases, a.scale_dtype, at, rows) : s);
    }
  } else {
    // r[d]: group g0 + d. A row reads L factors, past its own ng into the
    // next row's (never used), wherever the array goes on that far: a short
    // read goes through a copy, which cost the whole pass as much again when
    // G is not a multiple of L.
    const std::int64_t total = a.N * G;
    auto transposed = [&](const void* src, std::int64_t g0, int ng, I r[L]) {
      for (int i = 0; i < L; ++i) {
        const std::int64_t at = (n0 + i) * G + g0;
        r[i] = i < rows ? row_factors<V>(src, a.scale_dtype, at, at + L <= total ? L : ng) : V::load_words(src, 0);
      }
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

// Lane groups per pass of V::kTune.lut_rows_x x rows (see lut_block), so that the
// pass holds as many accumulators as lut_share groups of one x row.
template <class V>
constexpr int lut_share_rows() {
  return std::max(1, V::kTune.lut_share / V::kTune.lut_rows_x);
}

// Accumulators per lane group and x row: two with four lane groups (eight
// independent chains, as many as the registers hold), else four; the lookups
// of one word would otherwise wait on each other's additions (V::lut_add).
// The same for every pass, so that no result depends on how rows are batched.
template <class V>
constexpr int lut_accumulators() {
  return V::kTune.lut_share >= 4 ? 2 : 4;
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
// streams at all), is not relied on. Null after the matrix's last pass.
// The next pass's scales and biases go the same way, `factor_step` lines of each
// per word step from the pass's first (more than one where they outnumber the
// steps: small groups, float32 scales): issued all at once at the pass's start,
// they made a cold call 5-9% slower (Zen 4, one thread; docs/decode.md).
struct LutPrefetch {
  const std::uint8_t* next = nullptr;  // the next pass's first row
  int first_block = 0;                 // the pass's 16-row block this call starts at
  const char* factors[2] = {nullptr, nullptr};  // the next pass's scales and biases (or null)
  std::int64_t factor_lines = 0;                // 64-byte lines of each
  std::int64_t factor_step = 1;                 // of them per word step
};

// mlx order, read in place: words wd .. wd + L - 1 of each lane group's L
// rows (row L r + j of the group at w + (L r + j) row_bytes), transposed in
// registers into chunk[r][i] = word wd + i of the L rows, one lane each, as
// interleaved16 holds them. Every L words, so the chunk (R L^2 words: 4 KB
// on AVX-512) stays in L1 while the lookups read it (at M = 1: see
// lut_task). Rows past lanes[r] and words past `words` read as zeros and
// are never used.
// v[i] = word i of the n <= L rows at p (row j at p + j row_bytes, nw <= L
// words each), one row per lane: L x L words transposed in registers. Rows
// past n and words past nw are zero. What both stagings of mlx order share.
template <class V>
void load_transposed(const std::uint8_t* p, std::int64_t row_bytes, int n, int nw, typename V::I* v) {
  for (int j = 0; j < V::L; ++j) v[j] = j < n ? load_lanes<V>(p + j * row_bytes, nw) : V::load_words(p, 0);
  V::transpose(v);
}

template <class V, int R>
void stage_chunk(const std::uint8_t* w, std::int64_t row_bytes, const int* lanes, std::int64_t wd,
                 std::int64_t words, std::uint32_t (*chunk)[V::L][V::L]) {
  constexpr int L = V::L;
  const int nw = static_cast<int>(std::min<std::int64_t>(L, words - wd));
  for (int r = 0; r < R; ++r) {
    typename V::I v[L];
    load_transposed<V>(w + L * r * row_bytes + 4 * wd, row_bytes, lanes[r], nw, v);
    for (int i = 0; i < L; ++i) V::store_words(chunk[r][i], v[i]);
  }
}

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
// fac[r] (lut_factors). Mlx: W is in mlx order (row n0 first; see
// stage_chunk), read in place too.
template <class V, int B, int GS, int R, int XR, bool Full, bool Mlx>
void lut_block(const LutJob& job, const std::uint32_t* wq, std::int64_t n0, int rows, std::int64_t m,
               float* const* fac, const LutPrefetch& pf) {
  using F = typename V::F;
  using I = typename V::I;
  constexpr int L = V::L, P = V::kTune.lut_bits, J = lut_lookups<V>();
  const QmmArgs& a = *job.a;
  const std::int64_t K = a.K, G = K / GS, row_bytes = K * B / 8;
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
    const int block = L * r / kBlock * kBlock, in_block = L * r - block;
    word_at[r] = block * row_bytes + 4 * in_block;
    step[r] = std::min(kBlock, rows - block);
  }
  constexpr int blocks = V::kTune.lut_share * L / kBlock;  // 16-row blocks per pass
  // The next pass's factors are prefetched once, by its first x row (each row's copy cost 5% at M = 32).
  const std::int64_t factor_lines = m == 0 ? pf.factor_lines : 0;
  struct NoChunk {};
  struct alignas(64) Chunk {  // mlx order: stage_chunk's words
    std::uint32_t words[R][L][L];
  };
  std::conditional_t<Mlx, Chunk, NoChunk> chunk;
  for (std::int64_t g = 0, wd = 0; g < G; ++g) {
    F acc[XR][R][kAcc];
    for (auto& ax : acc)
      for (auto& ar : ax)
        for (F& v : ar) v = V::zero();
    for (int i = 0; i < words_per_group; ++i, ++wd) {
      if (pf.next)
        for (int r = 0; r < R; r += kBlock / std::min(L, kBlock))  // a line per 16-row block (see LutPrefetch)
          prefetch(pf.next + 64 * (blocks * wd + pf.first_block + L * r / kBlock));
      for (std::int64_t i = wd * pf.factor_step; i < std::min(factor_lines, (wd + 1) * pf.factor_step); ++i)
        for (const char* f : pf.factors)
          if (f) prefetch(f + 64 * i);
      if constexpr (Mlx) {
        if (wd % L == 0) stage_chunk<V, R>(w, row_bytes, lanes, wd, K * B / 32, chunk.words);
      }
      I q[R];
      for (int r = 0; r < R; ++r) {
        if constexpr (Mlx)
          q[r] = V::load_words(chunk.words[r][wd % L]);
        else
          q[r] = load_lanes<V>(w + word_at[r] + 4 * wd * step[r], lanes[r]);
      }
      // Lookup c of every lane group and x row. Each index is shifted from
      // the word itself (no chain of shifts), and each table is loaded once
      // into a register for its R lookups: GCC 12 otherwise folds the load
      // into every lookup (much slower).
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
template <class V, int B, int GS, int XR, int RMax, bool Mlx>
void lut_blocks(int groups, const LutJob& job, const std::uint32_t* wq, std::int64_t n0, int rows,
                std::int64_t m, float* const* fac, const LutPrefetch& pf) {
  if constexpr (RMax > 1) {
    if (groups < RMax) return lut_blocks<V, B, GS, XR, RMax - 1, Mlx>(groups, job, wq, n0, rows, m, fac, pf);
  }
  if (rows == V::L * RMax)
    lut_block<V, B, GS, RMax, XR, true, Mlx>(job, wq, n0, rows, m, fac, pf);
  else
    lut_block<V, B, GS, RMax, XR, false, Mlx>(job, wq, n0, rows, m, fac, pf);
}

// The `rows` (at most a pass) mlx-order W rows at src, `words` 32-bit words
// each, into interleaved16 order at dst: L x L tiles of words transposed in
// registers (two per 16-row block with AVX2's L = 8); a block of fewer than
// 16 rows (only at the end of W) by the layout's own scalar conversion.
template <class V>
void stage_pass(const std::uint8_t* src, int rows, std::int64_t words, std::uint32_t* dst) {
  constexpr int L = V::L;
  using I = typename V::I;
  for (int block = 0; block < rows; block += kBlock) {
    const int r = std::min(kBlock, rows - block);
    const std::uint8_t* in = src + 4 * block * words;
    std::uint32_t* out = dst + block * words;
    if (r < kBlock) {
      layout::interleave(in, 4, r, words, out);
      continue;
    }
    for (int h = 0; h < kBlock; h += L)
      for (std::int64_t w0 = 0; w0 < words; w0 += L) {
        const int nw = static_cast<int>(std::min<std::int64_t>(L, words - w0));
        I v[L];
        load_transposed<V>(in + 4 * (h * words + w0), 4 * words, L, nw, v);
        for (int d = 0; d < nw; ++d) V::store_words(out + (w0 + d) * kBlock + h, v[d]);
      }
  }
}

// Each thread's own copy of a job's x tables (LutJob::T null), built on its first task of
// the job. Shared, a call's tables (64 KB at K = 4096, rewritten every call) come to the
// other threads line by line from the caller's cache, which cost a second thread most of
// its half of a small matrix; a copy costs it the time the caller spends on its own.
template <class V, int B>
const float* thread_tables(const LutJob& job) {
  const QmmArgs& a = *job.a;
  float* const T = scratch<V, 3>(static_cast<std::size_t>(a.M * job.table_floats));
  thread_local std::uint64_t built = 0;  // the serial of the job T holds
  if (built != job.serial) {
    lut_tables_rows<V, B>(a, job.table_floats, T);
    built = job.serial;
  }
  return T;
}

// One task: passes of lut_share lane groups, each against every x row
// (their packed rows stay in L1/L2). Interleaved: W is read in place. mlx
// order: at M = 1, where every word is used once, in place too, L words
// at a time through L1 (stage_chunk); at M > 1, where every word serves
// each x row, each pass is staged once into interleaved16 order in a
// per-thread buffer (stage_pass; staging per x row doubled M = 512). The
// pass before prefetches its rows.
template <class V, int B, int GS, bool Interleaved>
void lut_task(void* ctx, std::int64_t t) {
  constexpr int L = V::L, share = V::kTune.lut_share;
  // interleaved16 blocks must not straddle passes.
  static_assert(share * L % kBlock == 0, "a pass is whole interleaved16 blocks");
  LutJob job = *static_cast<const LutJob*>(ctx);
  if (!job.T) job.T = thread_tables<V, B>(job);
  const QmmArgs& a = *job.a;
  const std::int64_t N = a.N, groups = (N + L - 1) / L, G = a.K / GS, words = a.K * B / 32;
  const std::int64_t b1 = std::min(groups, (t + 1) * job.groups_per_task);
  float* const fac_all = scratch<V, 1>(static_cast<std::size_t>(share * 2 * L * G));
  float* fac[share];
  for (int r = 0; r < share; ++r) fac[r] = fac_all + r * 2 * L * G;
  const bool in_place = Interleaved || a.M == 1;
  std::uint32_t* staged =
      in_place ? nullptr : scratch<V, 2, std::uint32_t>(static_cast<std::size_t>(share * L * words));
  const auto* w = reinterpret_cast<const std::uint8_t*>(a.wq);
  // Pass b (lane groups b ..): its rows, and where its words and factors lie. A pass's
  // factors are a byte range of the scales (and biases): in either layout rows [n, n +
  // rows) hold elements [n G, (n + rows) G).
  const std::int64_t factor_bytes = G * static_cast<std::int64_t>(dtype_size(a.scale_dtype));
  auto pass_rows = [&](std::int64_t b) { return std::min<std::int64_t>(share * L, N - L * b); };
  auto pass_lines = [&](std::int64_t b) {
    LutPrefetch p;
    const std::int64_t n = L * b;
    p.next = w + 4 * n * words;
    p.factors[0] = static_cast<const char*>(a.scales) + n * factor_bytes;
    p.factors[1] = a.biases ? static_cast<const char*>(a.biases) + n * factor_bytes : nullptr;
    p.factor_lines = (pass_rows(b) * factor_bytes + 63) / 64;
    p.factor_step = (p.factor_lines + words - 1) / words;
    return p;
  };
  // A task's first pass: prefetched at once (no pass before it did).
  if (const std::int64_t b0 = t * job.groups_per_task; b0 < b1) {
    const LutPrefetch first = pass_lines(b0);
    prefetch_range(first.next, 4 * pass_rows(b0) * words);
    for (const char* f : first.factors)
      if (f) prefetch_range(f, 64 * first.factor_lines);
  }
  constexpr int XR = V::kTune.lut_rows_x, RX = lut_share_rows<V>();
  static_assert(RX * L % kBlock == 0, "a pass is whole interleaved16 blocks");
  for (std::int64_t b = t * job.groups_per_task; b < b1; b += share) {
    const int rows = static_cast<int>(std::min(L * std::min<std::int64_t>(share, b1 - b), N - L * b));
    const int R = (rows + L - 1) / L;
    for (int r = 0; r < R; ++r) lut_factors<V, Interleaved>(a, (b + r) * L, std::min(L, rows - L * r), G, fac[r]);
    // The next pass: this task's, or at M = 1 after its last the next task's first
    // (on one thread that task comes next; on more, whoever takes it finds its first
    // pass in this core's cache instead of DRAM): 3-12% off a cold 4096 x 4096 or
    // 1024 x 4096 call on one and two threads (Zen 4); at M = 512 on two threads it
    // measured ~2% slower, so not there. Its words and factors, in lut_block.
    const std::int64_t next = b + share < b1 ? b + share : a.M == 1 ? b1 : groups;
    const LutPrefetch pf = next < groups ? pass_lines(next) : LutPrefetch{};
    if (!Interleaved && in_place) {  // mlx order, M = 1
      lut_blocks<V, B, GS, 1, share, true>(R, job, a.wq, L * b, rows, 0, fac, pf);
      continue;
    }
    // Where this pass's rows are read in interleaved16 order: W itself, or
    // the staged copy (whose row 0 is row L b).
    const std::uint32_t* wq = a.wq;
    std::int64_t n0 = L * b;
    if (!in_place) {
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
        for (int r0 = 0; r0 < R; r0 += RX) {
          LutPrefetch from_r0 = pf;  // the same lines, from lane group r0's block on
          from_r0.first_block = L * r0 / kBlock;
          lut_blocks<V, B, GS, XR, RX, false>(std::min(RX, R - r0), pass, wq, n0 + r0 * L,
                                              std::min(RX * L, rows - L * r0), m, fac + r0, from_r0);
        }
    }
    for (; m < a.M; ++m) lut_blocks<V, B, GS, 1, share, false>(R, pass, wq, n0, rows, m, fac, pf);
  }
}

// The tables take K * B/32 * J * L floats per x row (at 1 bit, 16 K bytes
// with AVX-512, 11 K with AVX2); the rows go through in chunks whose tables
// fit this budget (allocated per call), each chunk reading W once more.
constexpr std::int64_t kLutTableBytes = 2 << 20;
// Up to this many rows of x, each thread builds its own copy of the tables (thread_tables):
// faster at M = 1, 4 and 8 on two threads (Zen 4, docs/decode.md); at 16 and 32 the same
// within the noise, so there the tables (M x 64 KB at K = 4096) are built once.
constexpr std::int64_t kLutThreadTablesMaxM = 8;

// Needs no Factors: lut_factors makes them per lane group of rows.
template <class V, int B>
void qmm_lut(const QmmArgs& a) {
  const int gs = a.spec.group_size;
  const std::int64_t table_floats = a.K * B / 32 * lut_lookups<V>() * V::L, groups = (a.N + V::L - 1) / V::L;
  const std::int64_t chunk = std::clamp<std::int64_t>(kLutTableBytes / (4 * table_floats), 1, a.M);
  // Tables within kLutTableBytes (K up to 131072 at 1 bit with AVX-512) and the group sums
  // go in the calling thread's buffers, kept between calls: fresh zeroed vectors cost 1-3
  // us a call (Zen 4; 224 KB of tables at K = 14336). A longer row's are the call's own.
  const std::size_t table_count = static_cast<std::size_t>(chunk * table_floats);
  const std::size_t sum_count = static_cast<std::size_t>(chunk * (a.K / gs));
  const bool kept = 4 * table_count <= static_cast<std::size_t>(kLutTableBytes);
  std::vector<float> own(kept ? 0 : table_count + sum_count);
  float* const T = kept ? scratch<V, 3>(table_count) : own.data();
  float* const xs = kept ? scratch<V, 4>(sum_count) : own.data() + table_count;
  const bool interleaved = a.layout == WeightLayout::interleaved16;
  const int share = V::kTune.lut_share;
  // A few rows of x: each thread builds its own tables (thread_tables); more are worth
  // sharing.
  const bool per_thread = kept && a.M <= kLutThreadTablesMaxM && pool_threads() > 1;
  static std::atomic<std::uint64_t> serials{0};
  for (std::int64_t m0 = 0; m0 < a.M; m0 += chunk) {
    QmmArgs c = a;  // x rows m0 .. m0 + chunk
    c.M = std::min(chunk, a.M - m0);
    c.x = a.x + m0 * a.K;
    c.out = a.out + m0 * a.N;
    if (!per_thread) lut_tables_rows<V, B>(c, table_floats, T);
    group_sums<V>(c.x, c.M, a.K, gs, xs);
    LutJob job{&c, per_thread ? nullptr : T, table_floats, xs, split(groups, share, 1024 / V::L),
               serials.fetch_add(1, std::memory_order_relaxed) + 1};
    visit<format::kGroupSizes>(gs, [&](auto g) {
      constexpr int GS = decltype(g)::value;
      parallel_for((groups + job.groups_per_task - 1) / job.groups_per_task,
                   interleaved ? lut_task<V, B, GS, true> : lut_task<V, B, GS, false>, &job);
    });
  }
}


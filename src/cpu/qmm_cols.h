// The column kernel (CpuKernel::cols): transpose=False, small M, bits
// 1/2/4/8: vectorised along N (the packed axis); per row k of W, 1 bit adds
// a broadcast x_k * A where the bits are set, wider codes are dequantized and
// multiplied by x_k. Part of qmm_kernels.h: included only through it.

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
  for (; m + V::kTune.cols_rows <= a.M; m += V::kTune.cols_rows) tile(std::integral_constant<int, V::kTune.cols_rows>{}, m);
  for (; m < a.M; ++m) tile(std::integral_constant<int, 1>{}, m);
}

template <class V, int B>
void qmm_cols(const QmmArgs& a, const Factors& f) {
  // Column vectors per task: a group, or a part of it no wider than cols_vecs.
  constexpr int cv = V::kTune.cols_vecs;
  const int vpg = a.spec.group_size / V::L;
  ColsJob job{&a, &f, std::min(vpg, cv)};
  const std::int64_t tasks = a.N / (job.vecs * V::L);
  // Every supported group size is a multiple of 32 floats, so vpg and
  // cols_vecs are powers of two and vecs is one of these.
  switch (job.vecs) {
    case cv: return parallel_for(tasks, cols_task<V, B, cv>, &job);
    case cv / 2: return parallel_for(tasks, cols_task<V, B, cv / 2>, &job);
    default: return parallel_for(tasks, cols_task<V, B, cv / 4>, &job);
  }
}


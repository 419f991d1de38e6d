// The panel kernel (CpuKernel::panel): large M, and bits 3/5/6 at any M:
// dequantize KC x 2L tiles of W into float32 panels (16 KiB each, kPanels per
// thread, reused by every x row) and run a register-blocked FMA micro-kernel
// over them. Part of qmm_kernels.h: included only through it.

// K depth of a panel: 2L columns x kc floats = 16 KiB, half of a 32 KiB L1d,
// leaving room for the kTune.panel_mr x rows being broadcast.
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

// The micro-kernel for mr <= R (at most kTune.panel_mr) rows, R known at compile time.
template <class V, int R = V::kTune.panel_mr>
void micro_rows(int mr, const float* x, std::int64_t ldx, const float* P, int kc, float* out,
                std::int64_t ldo, bool accumulate_out, int nr) {
  if constexpr (R > 1)
    if (mr < R) return micro_rows<V, R - 1>(mr, x, ldx, P, kc, out, ldo, accumulate_out, nr);
  micro<V, R>(x, ldx, P, kc, out, ldo, accumulate_out, nr);
}

// Panels a task dequantizes per K step and multiplies by the same x rows:
// each panel_mr-row slice of x (panel_mr x kc floats, L1-resident) then serves this
// many panels (128 KiB, in L2) before the next slice is read, instead of
// one, so x comes from L3 or memory once per kPanels panels.
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
    for (std::int64_t m = m0; m < m1; m += V::kTune.panel_mr) {
      const int mr = static_cast<int>(std::min<std::int64_t>(V::kTune.panel_mr, m1 - m));
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
    job.m_block = std::max<std::int64_t>(V::kTune.panel_mr, (a.M + m_tasks - 1) / m_tasks / V::kTune.panel_mr * V::kTune.panel_mr);
  }
  const std::int64_t m_blocks = (a.M + job.m_block - 1) / job.m_block;
  parallel_for(job.n_tasks * m_blocks, panel_task<V, B>, &job);
}


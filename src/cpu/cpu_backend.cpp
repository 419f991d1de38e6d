// The CPU backend: walks the broadcast batch, widens activations to float32
// (exact) and narrows results to the output dtype around the 2-D kernels of
// the active instruction-set variant (isa.h), running the kernel
// choose_cpu_kernel picks (kernel_choice.h).
#include <memory>

#include "../common/backend.h"
#include "../common/dtype.h"
#include "../common/format.h"
#include "../common/trace.h"
#include "isa.h"
#include "kernel_choice.h"
#include "thread_pool.h"

namespace onebit {
namespace cpu {

namespace {

void run(const MatmulPlan& p, void* out) {
  const std::int64_t M = p.M, N = p.N, K = p.K;
  // An empty result: no kernel runs, so none is traced (as on Metal).
  if (M == 0 || N == 0 || p.batch.count == 0) return;
  const std::int64_t packed_rows = p.transpose ? N : K;
  const std::int64_t packed_len = p.transpose ? K : N;
  const std::int64_t w_words = packed_rows * format::words_per_row(packed_len, p.spec.bits);
  const std::int64_t w_groups = packed_rows * (packed_len / p.spec.group_size);
  const std::size_t xsize = dtype_size(p.x.dtype), osize = dtype_size(p.out_dtype);
  const std::size_t ssize = dtype_size(p.scales.dtype);
  const bool widen_x = p.x.dtype != DType::float32, narrow_out = p.out_dtype != DType::float32;
  // Not zeroed: every value is written before it is read.
  const std::unique_ptr<float[]> xbuf(widen_x ? new float[static_cast<std::size_t>(M * K)] : nullptr);
  const std::unique_ptr<float[]> obuf(narrow_out ? new float[static_cast<std::size_t>(M * N)] : nullptr);
  const Isa& isa = active_isa();
  const CpuKernelChoice choice = choose_cpu_kernel({M, N, K, p.spec.bits, p.transpose, p.layout}, isa.tuning);
  const SerialScope serial(choice.serial);

  for (std::int64_t b = 0; b < p.batch.count; ++b) {
    const char* xb = static_cast<const char*>(p.x.data) + p.batch.x_offset(b) * xsize;
    char* ob = static_cast<char*>(out) + b * M * N * osize;
    if (widen_x) isa.convert(xb, p.x.dtype, xbuf.get(), DType::float32, M * K);
    const std::int64_t wb = p.batch.w_offset(b);
    QmmArgs a;
    a.x = widen_x ? xbuf.get() : reinterpret_cast<const float*>(xb);
    a.wq = static_cast<const std::uint32_t*>(p.wq.data) + wb * w_words;
    a.scales = static_cast<const char*>(p.scales.data) + wb * w_groups * ssize;
    a.biases = p.biases.data ? static_cast<const char*>(p.biases.data) + wb * w_groups * ssize
                             : nullptr;
    a.scale_dtype = p.scales.dtype;
    a.out = narrow_out ? obuf.get() : reinterpret_cast<float*>(ob);
    a.M = M;
    a.N = N;
    a.K = K;
    a.spec = p.spec;
    a.transpose = p.transpose;
    a.layout = p.layout;
    a.kernel = choice.kernel;
    isa.qmm(a);
    if (narrow_out) isa.convert(obuf.get(), DType::float32, ob, p.out_dtype, M * N);
  }
  // The CPU's "grid" is the work: N x M per batch, spread over the pool.
  const std::uint32_t grid[3] = {static_cast<std::uint32_t>(N), static_cast<std::uint32_t>(M),
                                 static_cast<std::uint32_t>(p.batch.count)};
  const std::uint32_t threads[3] = {static_cast<std::uint32_t>(get_num_threads()), 1, 1};
  trace_record("cpu", std::string("qmm_") + isa.name + "_" + kernel_name(choice.kernel) + (choice.slabs ? "_slabs" : ""),
               grid, threads);
}

bool always() { return true; }

}  // namespace

const Backend& backend() {
  static const Backend cpu{"cpu", always, run};
  return cpu;
}

}  // namespace cpu
}  // namespace onebit

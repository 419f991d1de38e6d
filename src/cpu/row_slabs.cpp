// run_deinterleaved (reference.h): kernels for mlx-order W on interleaved16 W.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/dtype.h"
#include "../common/format.h"
#include "../common/layout.h"
#include "reference.h"

namespace onebit {
namespace cpu {

namespace {
// Rows per slab: a multiple of the layout's 16-row blocks, and enough
// 32-row panels (16) to keep a few threads busy within one slab.
constexpr std::int64_t kSlabRows = 512;
}  // namespace

void run_deinterleaved(const QmmArgs& a, void (*qmm)(const QmmArgs&)) {
  const std::int64_t W = format::words_per_row(a.K, a.spec.bits), G = a.K / a.spec.group_size;
  const std::size_t ssize = dtype_size(a.scale_dtype);
  const std::int64_t S = std::min(kSlabRows, a.N);
  std::vector<std::uint32_t> wq(static_cast<std::size_t>(S * W));
  std::vector<float> out(static_cast<std::size_t>(a.M * S));
  for (std::int64_t n0 = 0; n0 < a.N; n0 += S) {
    const std::int64_t rows = std::min(S, a.N - n0);
    layout::deinterleave_rows(a.wq, a.N, W, n0, n0 + rows, wq.data());
    QmmArgs slab = a;
    slab.wq = wq.data();
    slab.scales = static_cast<const char*>(a.scales) + n0 * G * ssize;
    slab.biases = a.biases ? static_cast<const char*>(a.biases) + n0 * G * ssize : nullptr;
    slab.out = out.data();
    slab.N = rows;
    slab.layout = WeightLayout::mlx;
    qmm(slab);
    for (std::int64_t m = 0; m < a.M; ++m)
      std::memcpy(a.out + m * a.N + n0, out.data() + m * rows, static_cast<std::size_t>(rows) * sizeof(float));
  }
}

}  // namespace cpu
}  // namespace onebit

// run_deinterleaved (reference.h): kernels for mlx-order weights on
// interleaved16 ones.
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
// Rows per slab: whole interleaved16 blocks, and enough 32-row panels (16)
// to keep a few threads busy within one slab.
constexpr std::int64_t kSlabRows = 512;
static_assert(kSlabRows % layout::kBlockRows == 0, "a slab is whole interleaved16 blocks");
}  // namespace

void run_deinterleaved(const QmmArgs& a, void (*qmm)(const QmmArgs&)) {
  const std::int64_t W = format::words_per_row(a.K, a.spec.bits), G = a.K / a.spec.group_size;
  const std::size_t ssize = dtype_size(a.scale_dtype);
  const std::int64_t S = std::min(kSlabRows, a.N);
  std::vector<std::uint32_t> wq(static_cast<std::size_t>(S * W));
  std::vector<char> scales(static_cast<std::size_t>(S * G) * ssize);
  std::vector<char> biases(a.biases ? scales.size() : 0);
  std::vector<float> out(static_cast<std::size_t>(a.M * S));
  QmmArgs slab = a;
  slab.layout = WeightLayout::mlx;
  slab.wq = wq.data();
  slab.scales = scales.data();
  slab.biases = a.biases ? biases.data() : nullptr;
  slab.out = out.data();
  for (std::int64_t n0 = 0; n0 < a.N; n0 += S) {
    const std::int64_t n1 = std::min(a.N, n0 + S);
    layout::deinterleave_rows(a.wq, sizeof(std::uint32_t), a.N, W, n0, n1, wq.data());
    layout::deinterleave_rows(a.scales, ssize, a.N, G, n0, n1, scales.data());
    if (a.biases) layout::deinterleave_rows(a.biases, ssize, a.N, G, n0, n1, biases.data());
    slab.N = n1 - n0;
    qmm(slab);
    for (std::int64_t m = 0; m < a.M; ++m)
      std::memcpy(a.out + m * a.N + n0, out.data() + m * slab.N, static_cast<std::size_t>(slab.N) * sizeof(float));
  }
}

}  // namespace cpu
}  // namespace onebit

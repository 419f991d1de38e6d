// Uses the C++ core with no Python anywhere: quantize a small matrix, run the
// quantized matmul, check it against a direct dot product with the
// dequantized weights, and check that bad calls throw onebit::ValueError.
#include <cmath>
#include <cstdio>
#include <vector>

#include "onebit/onebit.h"

int main() {
  const std::int64_t N = 5, K = 256;
  std::vector<float> w(N * K), x(K);
  for (std::int64_t i = 0; i < N * K; ++i) w[i] = std::sin(0.37f * i);
  for (std::int64_t k = 0; k < K; ++k) x[k] = std::cos(0.11f * k);

  onebit::ArrayRef wr{w.data(), onebit::DType::float32, {N, K}, ""};
  onebit::QuantSpec spec;  // 1 bit, group 128, affine
  onebit::QuantizePlan qp = onebit::plan_quantize(wr, spec);
  std::vector<std::uint32_t> wq(N * K / 32);
  std::vector<float> scales(N * K / 128), biases(N * K / 128);
  onebit::quantize(qp, wq.data(), scales.data(), biases.data());

  onebit::ArrayRef wqr{wq.data(), onebit::DType::uint32, qp.wq_shape, ""};
  onebit::ArrayRef sr{scales.data(), onebit::DType::float32, qp.scales_shape, ""};
  onebit::ArrayRef br{biases.data(), onebit::DType::float32, qp.scales_shape, ""};
  std::vector<float> wd(N * K);
  onebit::dequantize(onebit::plan_dequantize(wqr, sr, &br, spec), wd.data());

  onebit::ArrayRef xr{x.data(), onebit::DType::float32, {K}, ""};
  onebit::MatmulPlan mp = onebit::plan_quantized_matmul(xr, wqr, sr, &br, true, spec);
  std::vector<float> out(N);
  onebit::quantized_matmul(mp, out.data());
  for (std::int64_t n = 0; n < N; ++n) {
    double ref = 0, mag = 0;
    for (std::int64_t k = 0; k < K; ++k) {
      ref += double(x[k]) * wd[n * K + k];
      mag += std::fabs(double(x[k]) * wd[n * K + k]);
    }
    if (std::fabs(out[n] - ref) > 1e-5 * mag) {
      std::printf("row %lld: got %g expected %g\n", (long long)n, out[n], ref);
      return 1;
    }
  }
  try {
    spec.group_size = 48;
    onebit::plan_quantize(wr, spec);
    std::printf("group_size=48 was accepted\n");
    return 1;
  } catch (const onebit::ValueError& e) {
    std::printf("ok: %s\n", e.what());
  }
  try {
    const onebit::ArrayRef no_data{nullptr, onebit::DType::uint32, {16, 8}, ""};
    std::vector<std::uint32_t> dst(16 * 8);
    onebit::interleave16(no_data, dst.data());
    std::printf("interleave16 accepted an array with no data\n");
    return 1;
  } catch (const onebit::ValueError& e) {
    std::printf("ok: %s\n", e.what());
  }
  return 0;
}

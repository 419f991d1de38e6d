// The onebit C++ API from a plain C++ program, no Python involved:
//   1. quantize a random float32 weight matrix W (N x K) to 1 bit per weight
//      (MLX's affine format: packed bits, one scale and one bias per group),
//   2. multiply a vector by it on the quantized weights (plan, then run),
//   3. dequantize the weights and check the product against a float64 dot
//      product over the same dequantized weights,
//   4. show how a bad call is reported (onebit::ValueError).
// Exits with 1 if the product is off, 0 otherwise.
#include <onebit/onebit.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

int main() {
  const std::int64_t N = 512, K = 2048;  // W is (N, K): N outputs, K inputs
  std::printf("backends: %s\n", join(onebit::backends()).c_str());
  std::printf("cpu kernel: %s\n", onebit::cpu_kernel_active().c_str());

  // Seeded, so every run sees the same numbers.
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(N * K), x(K);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);

  // 1. Quantize. The plan checks the arguments and gives the output shapes;
  //    the caller allocates the outputs, here in std::vectors.
  onebit::QuantSpec spec;  // bits = 1, group_size = 128, affine
  onebit::ArrayRef w_ref{w.data(), onebit::DType::float32, {N, K}, ""};
  onebit::QuantizePlan qplan = onebit::plan_quantize(w_ref, spec);
  std::vector<std::uint32_t> wq(element_count(qplan.wq_shape));  // (N, K/32)
  std::vector<float> scales(element_count(qplan.scales_shape));  // (N, K/128), dtype of w
  std::vector<float> biases(scales.size());
  onebit::quantize(qplan, wq.data(), scales.data(), biases.data());
  onebit::ArrayRef wq_ref{wq.data(), onebit::DType::uint32, qplan.wq_shape, ""};
  onebit::ArrayRef scales_ref{scales.data(), onebit::DType::float32, qplan.scales_shape, ""};
  onebit::ArrayRef biases_ref{biases.data(), onebit::DType::float32, qplan.scales_shape, ""};
  std::printf("quantized W %lldx%lld: %zu bytes of bits + %zu bytes of scales and biases "
              "(float32 W: %zu bytes)\n", (long long)N, (long long)K, wq.size() * 4,
              (scales.size() + biases.size()) * 4, w.size() * 4);

  // 2. out = x @ W_hat.T. A 1-D x is one row; the output is then (N,).
  onebit::ArrayRef x_ref{x.data(), onebit::DType::float32, {K}, ""};
  onebit::MatmulPlan mplan = onebit::plan_quantized_matmul(
      x_ref, wq_ref, scales_ref, &biases_ref, /*transpose=*/true, spec);
  std::vector<float> out(element_count(mplan.out_shape));
  onebit::quantized_matmul(mplan, out.data());  // "" = the best backend

  // 3. W_hat, the weights the product used, and a float64 reference over them.
  onebit::DequantizePlan dplan = onebit::plan_dequantize(wq_ref, scales_ref, &biases_ref, spec);
  std::vector<float> w_hat(element_count(dplan.out_shape));  // (N, K) float32
  onebit::dequantize(dplan, w_hat.data());

  // Error of each output relative to sum_k |x_k W_hat[n,k]|, the size of the
  // terms float32 accumulation rounds; the bound allows for a float32 sum in
  // any order (8 sqrt(K) float32 epsilons).
  const double bound = 8 * std::sqrt(double(K)) * std::ldexp(1.0, -24);
  double max_rel = 0;
  for (std::int64_t n = 0; n < N; ++n) {
    double ref = 0, magnitude = 0;
    for (std::int64_t k = 0; k < K; ++k) {
      const double term = double(x[k]) * double(w_hat[n * K + k]);
      ref += term;
      magnitude += std::fabs(term);
    }
    const double rel = std::fabs(out[n] - ref) / magnitude;
    if (rel > max_rel) max_rel = rel;
  }
  if (!(max_rel <= bound)) {  // also catches NaN
    std::printf("MISMATCH: max relative error %.3g exceeds %.3g\n", max_rel, bound);
    return 1;
  }
  std::printf("ok: max relative error %.3g (bound %.3g)\n", max_rel, bound);

  // 4. Bad calls throw onebit::ValueError or onebit::TypeError (both are
  //    std::invalid_argument) from the plan, before any work. Here x has the
  //    wrong length for W.
  onebit::ArrayRef short_x{x.data(), onebit::DType::float32, {K / 2}, ""};
  try {
    onebit::plan_quantized_matmul(short_x, wq_ref, scales_ref, &biases_ref, true, spec);
    std::printf("MISMATCH: a vector of the wrong length was accepted\n");
    return 1;
  } catch (const onebit::ValueError& e) {
    std::printf("caught onebit::ValueError: %s\n", e.what());
  }
  return 0;
}

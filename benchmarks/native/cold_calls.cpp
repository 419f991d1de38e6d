// The CPU kernel's M = 1 product cold (a stream of distinct copies of one matrix,
// each called once per round, so its bytes come from DRAM) and hot (one copy called
// again and again), timed per call in C++ without Python (docs/decode.md): 1 bit,
// group 128, float16 x, scales and biases; interleaved16 (QuantizedLinear's order)
// or mlx order. Prints medians over 7 rounds and cold - hot as a read rate.
//   cmake -S . -B /tmp/onebit-build -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/onebit-build --target onebit
//   g++ -O2 -std=c++17 -Iinclude benchmarks/native/cold_calls.cpp /tmp/onebit-build/libonebit.a -lpthread -o /tmp/cold_calls
//   /tmp/cold_calls N K COPIES [THREADS [mlx]]      e.g. /tmp/cold_calls 4096 4096 50 1
#include <onebit/onebit.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Matrix {
  std::vector<std::uint32_t> wq;
  std::vector<std::uint16_t> scales, biases;
  onebit::MatmulPlan plan;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace onebit;
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s N K COPIES [THREADS [mlx]]\n", argv[0]);
    return 2;
  }
  const std::int64_t N = std::atoll(argv[1]), K = std::atoll(argv[2]), G = K / 128;
  const int copies = std::atoi(argv[3]);
  set_num_threads(argc > 4 ? std::atoi(argv[4]) : 1);
  const bool mlx = argc > 5;
  std::mt19937 rng(1);
  std::vector<std::uint16_t> x(K);
  for (auto& v : x) v = 0x3c00 ^ (rng() & 0x83ff);  // float16 in (-2, 2)
  const ArrayRef x_ref{x.data(), DType::float16, {1, K}, ""};
  const QuantSpec spec;  // 1 bit, group 128, affine
  std::vector<Matrix> mats(copies);
  for (Matrix& m : mats) {
    std::vector<std::uint32_t> wq(N * K / 32);
    std::vector<std::uint16_t> s(N * G), b(N * G);
    for (auto& v : wq) v = rng();
    for (auto& v : s) v = 0x2000 + (rng() & 0x3ff);  // small positive float16
    for (auto& v : b) v = 0xa000 + (rng() & 0x3ff);  // small negative
    m.wq.resize(wq.size()), m.scales.resize(s.size()), m.biases.resize(b.size());
    if (mlx) {
      m.wq = wq, m.scales = s, m.biases = b;
    } else {
      interleave16(ArrayRef{wq.data(), DType::uint32, {N, K / 32}, ""}, m.wq.data());
      interleave16(ArrayRef{s.data(), DType::float16, {N, G}, ""}, m.scales.data());
      interleave16(ArrayRef{b.data(), DType::float16, {N, G}, ""}, m.biases.data());
    }
    const ArrayRef w{m.wq.data(), DType::uint32, {N, K / 32}, ""};
    const ArrayRef sr{m.scales.data(), DType::float16, {N, G}, ""}, br{m.biases.data(), DType::float16, {N, G}, ""};
    m.plan = plan_quantized_matmul(x_ref, w, sr, &br, true, spec, mlx ? WeightLayout::mlx : WeightLayout::interleaved16);
  }
  std::vector<std::uint16_t> out(N);
  std::vector<double> cold, hot;
  for (int round = 0; round < 7; ++round) {
    for (const Matrix& m : mats) {
      const double t = now();
      quantized_matmul(m.plan, out.data(), "cpu");
      cold.push_back(now() - t);
    }
    for (int i = 0; i < 20; ++i) {
      const double t = now();
      quantized_matmul(mats[0].plan, out.data(), "cpu");
      hot.push_back(now() - t);
    }
  }
  const double bytes = N * K / 8.0 + 2.0 * N * G * 2, c = median(cold), h = median(hot);
  std::printf("%s %lldx%lld, %d thread(s): cold %.0f us, hot %.0f us, cold / hot %.2f, cold - hot = bytes / %.1f GB/s\n",
              mlx ? "mlx order" : "interleaved16", static_cast<long long>(N), static_cast<long long>(K),
              get_num_threads(), c * 1e6, h * 1e6, c / h, bytes / (c - h) / 1e9);
}

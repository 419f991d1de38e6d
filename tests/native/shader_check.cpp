// Runs one family of emulated Metal kernels against the CPU reference through
// the public C++ API, for the shader mutation test (test_shader_mutation.py)
// and the sanitized emulator run (test_sanitizers.py).
// Usage: shader_check qmv|qvm|qmm|nax. Exit 0: every case matches; 1: some
// case differs (prints MISMATCH); 2: the harness itself failed.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "common/half.h"
#include "onebit/onebit.h"

namespace {

struct Case {
  std::int64_t M, N, K;
  int bits, group_size;
  onebit::Mode mode;
  bool transpose = true;
};

std::vector<Case> cases(const std::string& family) {
  std::vector<Case> all;
  for (int bits : {1, 2, 4})
    for (int gs : {32, 64, 128}) {
      const onebit::Mode affine = onebit::Mode::affine;
      if (family == "qmv") {
        all.push_back({1, 37, 4 * gs, bits, gs, affine});  // qmv, ragged N
        all.push_back({1, 64, 2048, bits, gs, affine});    // qmv_fast
        all.push_back({1, 37, 128, bits, gs, affine});     // qmv_quad
      } else if (family == "qvm") {
        all.push_back({1, 2 * gs, 37, bits, gs, affine, false});    // qvm, ragged K
        all.push_back({1, 2 * gs, 1500, bits, gs, affine, false});  // qvm_split_k
      } else if (family == "qmm") {
        all.push_back({5, 37, 2 * gs, bits, gs, affine});          // qmm_t, ragged M and N
        all.push_back({33, 2 * gs, 37, bits, gs, affine, false});  // qmm_n, ragged M and K
      } else {
        all.push_back({33, 37, 2 * gs, bits, gs, onebit::Mode::affine});  // qmm_t_nax
      }
    }
  return all;
}

float value(std::uint32_t& state) {  // a small deterministic generator
  state = state * 1664525u + 1013904223u;
  return static_cast<float>((state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

bool run_case(const Case& c, std::uint32_t seed) {
  using namespace onebit;
  // W is (N, K) packed along K when transposed, (K, N) packed along N if not.
  const std::int64_t rows = c.transpose ? c.N : c.K, packed = c.transpose ? c.K : c.N;
  std::vector<std::uint16_t> w(rows * packed), x(c.M * c.K);
  for (auto& v : w) v = float_to_half(value(seed));
  for (auto& v : x) v = float_to_half(value(seed));
  QuantSpec spec{c.bits, c.group_size, c.mode};
  ArrayRef wr{w.data(), DType::float16, {rows, packed}, ""};
  QuantizePlan qp = plan_quantize(wr, spec);
  std::vector<std::uint32_t> wq(rows * packed * c.bits / 32);
  std::vector<std::uint16_t> s(rows * packed / c.group_size), b(s.size());
  quantize(qp, wq.data(), s.data(), b.data());
  ArrayRef wqr{wq.data(), DType::uint32, qp.wq_shape, ""};
  ArrayRef sr{s.data(), DType::float16, qp.scales_shape, ""};
  ArrayRef br{b.data(), DType::float16, qp.scales_shape, ""};
  ArrayRef xr{x.data(), DType::float16, {c.M, c.K}, ""};
  MatmulPlan mp = plan_quantized_matmul(xr, wqr, sr, &br, c.transpose, spec);
  std::vector<std::uint16_t> ref(c.M * c.N), emu(c.M * c.N);
  quantized_matmul(mp, ref.data(), "cpu");
  quantized_matmul(mp, emu.data(), "metal-emulated");
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const float r = half_to_float(ref[i]), e = half_to_float(emu[i]);
    // Inputs in [-1, 1): a correct kernel is within float16 rounding of the
    // reference; a broken one is off by whole weights.
    if (!(std::fabs(r - e) <= 2e-3f * std::sqrt(float(c.K)) + 4e-3f * std::fabs(r))) {
      std::printf("MISMATCH M=%lld N=%lld K=%lld bits=%d gs=%d at %zu: %g vs %g\n",
                  (long long)c.M, (long long)c.N, (long long)c.K, c.bits, c.group_size, i, e, r);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  setenv("PYONEBIT_NAX", "on", 1);
  try {
    bool ok = true;
    std::uint32_t seed = 1;
    for (const Case& c : cases(argv[1])) ok = run_case(c, seed++) && ok;
    std::printf(ok ? "all cases match\n" : "some cases differ\n");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::printf("harness error: %s\n", e.what());
    return 2;
  }
}

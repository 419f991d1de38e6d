// Runs the self-test kernels of selftest.metal on the emulator and checks
// each against its known answer. Prints one line per check and "ALL OK".
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../src/common/half.h"
#include "../../src/metal/emulator/kernel_abi.h"

using onebit::metal::emu::Launch;

static int failures = 0;

static void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

static Launch make(const char* name, unsigned groups, unsigned threads, std::vector<void*> buffers,
                   std::vector<std::int64_t> tg = {}) {
  Launch l;
  l.kernel = onebit::metal::emu::find_kernel(name);
  if (!l.kernel) throw std::runtime_error(std::string("no kernel ") + name);
  l.threadgroups = {groups, 1, 1};
  l.threads = {threads, 1, 1};
  l.buffers = std::move(buffers);
  l.threadgroup_memory = std::move(tg);
  return l;
}

static void expect_error(const char* name, const char* fragment) {
  std::vector<float> out(64, 0.0f);
  try {
    onebit::metal::emu::launch(make(name, 1, 64, {out.data()}));
    check(false, std::string(name) + " should fail");
  } catch (const std::runtime_error& e) {
    const bool ok = std::string(e.what()).find(fragment) != std::string::npos;
    check(ok, std::string(name) + " fails: " + e.what());
  }
}

int main() {
  {  // collectives over two simdgroups
    std::vector<float> in(64), out(6 * 64);
    for (int i = 0; i < 64; ++i) in[i] = float((i * 7) % 13);
    onebit::metal::emu::launch(make("collectives", 1, 64, {in.data(), out.data()}));
    bool ok = true;
    for (int t = 0; t < 64; ++t) {
      const int base = t & ~31, lane = t & 31;
      float sum = 0, mx = -1;
      for (int l = 0; l < 32; ++l) {
        sum += in[base + l];
        mx = std::fmax(mx, in[base + l]);
      }
      float quad = 0;
      for (int l = t & ~3; l < (t & ~3) + 4; ++l) quad += in[l];
      ok &= out[6 * t] == sum && out[6 * t + 1] == mx;
      ok &= out[6 * t + 2] == (lane + 3 < 32 ? in[t + 3] : in[t]);
      ok &= out[6 * t + 3] == in[base + (lane ^ 5)];
      ok &= out[6 * t + 4] == quad && out[6 * t + 5] == in[base + 7];
    }
    check(ok, "simd_sum/max, shuffle_down/xor, quad_sum, broadcast");
  }
  {  // threadgroup memory + barrier, several threadgroups in parallel
    std::vector<float> in(96 * 5), out(96 * 5);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = float(i);
    onebit::metal::emu::launch(make("reverse_through_threadgroup", 5, 96, {in.data(), out.data()},
                                    {96 * 4}));
    bool ok = true;
    for (int g = 0; g < 5; ++g)
      for (int i = 0; i < 96; ++i) ok &= out[g * 96 + i] == in[g * 96 + 95 - i];
    check(ok, "threadgroup memory shared by the threadgroup, barrier orders it");
  }
  {  // simdgroup matrix multiply-accumulate with a transposed half operand
    std::vector<float> a(64), c(64), expect(64);
    std::vector<std::uint16_t> b(64);
    for (int i = 0; i < 64; ++i) {
      a[i] = float(i % 5) - 2;
      b[i] = onebit::float_to_half(float(i % 7) * 0.5f);
      c[i] = float(i);
    }
    for (int r = 0; r < 8; ++r)
      for (int col = 0; col < 8; ++col) {
        float acc = c[r * 8 + col];
        for (int k = 0; k < 8; ++k) acc += a[r * 8 + k] * onebit::half_to_float(b[col * 8 + k]);
        expect[r * 8 + col] = acc;
      }
    onebit::metal::emu::launch(make("matrix_mma", 1, 32, {a.data(), b.data(), c.data()}));
    check(c == expect, "simdgroup_load (transposed), multiply_accumulate, store");
  }
  {  // lanes that returned early leave later collectives
    std::vector<float> out(1, -1);
    onebit::metal::emu::launch(make("partial_sum", 1, 32, {out.data()}));
    check(out[0] == 190.0f, "simd_sum over the 20 live lanes = 190");
  }
  {  // half rounds after every operation
    std::vector<std::uint16_t> in = {onebit::float_to_half(0.1f), onebit::float_to_half(3.3f)}, out(3);
    onebit::metal::emu::launch(make("half_math", 1, 1, {in.data(), out.data()}));
    const float a = onebit::half_to_float(in[0]), b = onebit::half_to_float(in[1]);
    check(out[0] == onebit::float_to_half(a + b) && out[1] == onebit::float_to_half(a * b) &&
              out[2] == onebit::float_to_half(a * 3.0f),
          "half +, * round to half");
  }
  expect_error("divergent", "diverged");
  expect_error("mismatched_barriers", "different barriers");
  expect_error("barrier_vs_simd", "wait forever");
  expect_error("reads_dead_lane", "reads inactive lane 31");
  expect_error("nonuniform_load", "simdgroup_load: lanes passed different arguments (lane 5 vs lane 0)");
  {  // wrong number of bindings is caught before running
    std::vector<float> out(64);
    try {
      onebit::metal::emu::launch(make("collectives", 1, 64, {out.data()}));
      check(false, "binding count mismatch should fail");
    } catch (const std::invalid_argument& e) {
      check(std::string(e.what()).find("takes 2") != std::string::npos, e.what());
    }
  }
  {  // Metal 4 tensor ops (matmul2d), several threadgroups = several layout rotations
    const int TM = 16, TN = 32, TK = 40, G = 4;
    std::vector<std::uint16_t> a(TM * TK), b(TK * TN), bt(TN * TK);
    std::vector<float> expect(TM * TN, 0.0f);
    for (int i = 0; i < TM * TK; ++i) a[i] = onebit::float_to_half(float((i * 5) % 11) - 5);
    for (int k = 0; k < TK; ++k)
      for (int n = 0; n < TN; ++n) {
        b[k * TN + n] = onebit::float_to_half(float((k * 3 + n) % 7) * 0.25f);
        bt[n * TK + k] = b[k * TN + n];
      }
    for (int m = 0; m < TM; ++m)
      for (int n = 0; n < TN; ++n)
        for (int k = 0; k < TK; ++k)
          expect[m * TN + n] += onebit::half_to_float(a[m * TK + k]) * onebit::half_to_float(b[k * TN + n]);
    auto all_match = [&](const std::vector<float>& out) {
      for (int g = 0; g < G; ++g)
        for (int i = 0; i < TM * TN; ++i)
          if (out[g * TM * TN + i] != expect[i]) return false;
      return true;
    };
    std::vector<float> out(G * TM * TN, -1.0f);
    auto l = make("nax_cooperative", G, 128, {a.data(), b.data(), out.data()});
    onebit::metal::emu::launch(l);
    check(all_match(out), "matmul2d into a cooperative tensor, ragged K, stored through a tensor");
    std::fill(out.begin(), out.end(), -1.0f);
    onebit::metal::emu::launch(make("nax_threadgroup", G, 128, {a.data(), bt.data(), out.data()},
                                    {TM * TN * 4}));
    check(all_match(out), "matmul2d accumulating into threadgroup memory, transposed B, K in two runs");
    std::fill(out.begin(), out.end(), -1.0f);
    onebit::metal::emu::launch(make("nax_assumes_layout", G, 128, {a.data(), b.data(), out.data()}));
    check(!all_match(out), "a kernel assuming the cooperative tensor layout gets wrong answers");
  }
  if (failures == 0) std::printf("ALL OK\n");
  return failures == 0 ? 0 : 1;
}

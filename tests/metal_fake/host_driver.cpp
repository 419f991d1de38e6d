// Runs src/metal/host against the fake Metal of fake_metal.cpp: one scenario
// per process (argv[1]), since the device is a per-process singleton and the
// fake's configuration comes from the environment. The planner is replaced by
// a fixed one (the real planner is tested on its own), and the "GPU" computes
// the 1-bit matmul through the buffers exactly as bound, so a wrong buffer,
// index or offset gives wrong numbers against expected(), which reads the
// caller's arrays directly. Links only the host code, plan.cpp and
// reference.cpp (dtype conversion; with row_slabs.cpp and layout.cpp, which
// it calls for interleaved weights). Prints "ok" or a reason and exits 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/backend.h"
#include "common/dtype.h"
#include "fake_metal.h"
#include "metal/host/device.h"
#include "metal/host/stats.h"
#include "metal/planner.h"

using namespace onebit;

namespace {

struct FakeParams {
  std::int64_t M, N, K, batches, batch_ndim, group_size;
  std::int32_t symmetric;
};

std::string g_kernel_prefix = "fake_qmm_";
onebit::metal::DeviceCaps g_caps;  // what the backend gave the (fixed) planner last

#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
      std::exit(1);                                                             \
    }                                                                           \
  } while (0)

// The "GPU": y[b, m, n] = sum_k x[xo(b) + m*K + k] * w_hat(wo(b), n, k), float32,
// with batch b's offsets from the batch dims' shape and strides (buffers 6, 7).
void gpu(const fake::Dispatched& d) {
  const FakeParams& p = *reinterpret_cast<const FakeParams*>(d.buffers.at(5).bytes.data());
  auto* wq = reinterpret_cast<const std::uint32_t*>(d.buffers.at(0).data());
  auto* scales = reinterpret_cast<const float*>(d.buffers.at(1).data());
  auto* biases = reinterpret_cast<const float*>(d.buffers.at(2).data());
  auto* x = reinterpret_cast<const float*>(d.buffers.at(3).data());
  auto* y = reinterpret_cast<float*>(d.buffers.at(4).data());
  auto* shape = reinterpret_cast<const std::int64_t*>(d.buffers.at(6).data());
  auto* strides = reinterpret_cast<const std::int64_t*>(d.buffers.at(7).data());
  const std::int64_t G = p.K / p.group_size;
  for (std::int64_t b = 0; b < p.batches; ++b) {
    std::int64_t xo = 0, wo = 0;
    for (std::int64_t i = p.batch_ndim - 1, rest = b; i >= 0; --i) {
      xo += rest % shape[i] * strides[i];
      wo += rest % shape[i] * strides[p.batch_ndim + i];
      rest /= shape[i];
    }
    for (std::int64_t m = 0; m < p.M; ++m)
      for (std::int64_t n = 0; n < p.N; ++n) {
        float acc = 0;
        for (std::int64_t k = 0; k < p.K; ++k) {
          const std::int64_t row = wo * p.N + n;
          const std::uint32_t bit = (wq[row * (p.K / 32) + k / 32] >> (k % 32)) & 1u;
          const float s = scales[row * G + k / p.group_size];
          const float w = p.symmetric ? (bit ? s : -s) : s * bit + biases[row * G + k / p.group_size];
          acc += x[xo + m * p.K + k] * w;
        }
        y[(b * p.M + m) * p.N + n] = acc;
      }
  }
}

// Test data: owned storage, optionally starting `shift` bytes past a page.
struct Array {
  std::vector<char> storage;
  ArrayRef ref;
  Array(DType dtype, std::vector<std::int64_t> shape, std::size_t shift = 0) {
    ref.dtype = dtype;
    ref.shape = std::move(shape);
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    storage.resize(ref.size() * dtype_size(dtype) + 2 * page + shift);
    const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(storage.data());
    ref.data = storage.data() + ((page - base % page) % page) + shift;
  }
};

struct Case {
  Array x, wq, scales, biases;
  MatmulPlan plan;
  Case(DType xdtype, std::int64_t xbatch, std::int64_t wbatch, bool symmetric, std::size_t xshift = 20,
       std::int64_t M = 3, std::int64_t N = 5, std::int64_t K = 128)
      : x(xdtype, {xbatch, M, K}, xshift),
        wq(DType::uint32, {wbatch, N, K / 32}),
        scales(DType::float32, {wbatch, N, K / 64}),
        biases(DType::float32, {wbatch, N, K / 64}) {
    std::srand(7);
    for (std::int64_t i = 0; i < x.ref.size(); ++i) {
      const float v = static_cast<float>(std::rand() % 200 - 100) / 64.0f;
      convert(&v, DType::float32, static_cast<char*>(x.ref.data) + i * dtype_size(xdtype), xdtype, 1);
    }
    for (std::int64_t i = 0; i < wq.ref.size(); ++i)
      static_cast<std::uint32_t*>(wq.ref.data)[i] = static_cast<std::uint32_t>(std::rand()) * 2654435761u;
    for (std::int64_t i = 0; i < scales.ref.size(); ++i) {
      static_cast<float*>(scales.ref.data)[i] = 0.25f + static_cast<float>(i % 7) / 8;
      static_cast<float*>(biases.ref.data)[i] = -0.5f + static_cast<float>(i % 5) / 4;
    }
    QuantSpec spec;
    spec.bits = 1;
    spec.group_size = 64;
    spec.mode = symmetric ? Mode::symmetric : Mode::affine;
    plan = plan_quantized_matmul(x.ref, wq.ref, scales.ref, symmetric ? nullptr : &biases.ref, true, spec);
  }
  std::size_t out_elems() const {
    std::size_t n = 1;
    for (std::int64_t d : plan.out_shape) n *= static_cast<std::size_t>(d);
    return n;
  }
};

const Backend& metal_backend() { return metal::backend(); }

// The 1-bit matmul straight from the caller's arrays, in double.
std::vector<double> expected(const Case& c) {
  const MatmulPlan& p = c.plan;
  const std::int64_t G = p.K / p.spec.group_size;
  std::vector<double> y(c.out_elems());
  const std::size_t xsize = dtype_size(p.x.dtype);
  const std::int64_t xbatches = c.x.ref.shape[0], wbatches = c.wq.ref.shape[0];
  const std::int64_t batches = std::max(xbatches, wbatches);
  for (std::int64_t b = 0; b < batches; ++b)
    for (std::int64_t m = 0; m < p.M; ++m)
      for (std::int64_t n = 0; n < p.N; ++n) {
        double acc = 0;
        for (std::int64_t k = 0; k < p.K; ++k) {
          const std::int64_t row = (wbatches == 1 ? 0 : b) * p.N + n;
          const auto* wq = static_cast<const std::uint32_t*>(p.wq.data);
          const bool bit = (wq[row * (p.K / 32) + k / 32] >> (k % 32)) & 1u;
          const double s = static_cast<const float*>(p.scales.data)[row * G + k / p.spec.group_size];
          const double w = p.spec.mode == Mode::symmetric
                               ? (bit ? s : -s)
                               : s * bit + static_cast<const float*>(p.biases.data)[row * G + k / p.spec.group_size];
          float x = 0;
          convert(static_cast<const char*>(p.x.data) + ((xbatches == 1 ? 0 : b) * p.M * p.K + m * p.K + k) * xsize, p.x.dtype, &x,
                  DType::float32, 1);
          acc += x * w;
        }
        y[(b * p.M + m) * p.N + n] = acc;
      }
  return y;
}

// Runs on "metal" and compares with expected().
void run_and_compare(const Case& c, Array* out_storage = nullptr) {
  std::vector<float> got_vec(c.out_elems());
  float* got = out_storage ? static_cast<float*>(out_storage->ref.data) : got_vec.data();
  metal_backend().run(c.plan, got);
  const std::vector<double> want = expected(c);
  for (std::size_t i = 0; i < want.size(); ++i)
    if (std::fabs(got[i] - want[i]) > 1e-4 * (1 + std::fabs(want[i]))) {
      std::printf("FAILED: out[%zu] = %g, expected %g\n", i, got[i], want[i]);
      std::exit(1);
    }
}

void expect_error(const Case& c, const char* needle) {
  std::vector<float> out(c.out_elems());
  try {
    metal_backend().run(c.plan, out.data());
  } catch (const std::runtime_error& e) {
    if (std::strstr(e.what(), needle)) return;
    std::printf("FAILED: error '%s' lacks '%s'\n", e.what(), needle);
    std::exit(1);
  }
  std::printf("FAILED: no error (expected '%s')\n", needle);
  std::exit(1);
}

metal::StatsSnapshot stats_delta(const metal::StatsSnapshot& before) {
  metal::StatsSnapshot now = metal::stats_snapshot();
  now.wrapped -= before.wrapped;
  now.copied_inputs -= before.copied_inputs;
  now.copied_outputs -= before.copied_outputs;
  now.copied_misaligned -= before.copied_misaligned;
  return now;
}

void check_clean() {
  const fake::Counters n = fake::counters();
  CHECK(n.live_buffers == 0);               // every buffer released
  CHECK(n.autoreleased_without_pool == 0);  // every autoreleased object had a pool
}

}  // namespace

namespace onebit {
namespace metal {
// The planner's NAX policy: not under test here.
NaxPolicy nax_policy_from_env() { return NaxPolicy::automatic; }

// The names library.cpp probes for, in the planner's format (planner.cpp is
// not linked; test_metal_planner.py checks the real one).
std::string kernel_name(const char* kernel, DType dtype, const QuantSpec& spec) {
  return std::string(kernel) + "_" + dtype_name(dtype) + "_gs_" + std::to_string(spec.group_size) + "_b_" +
         std::to_string(spec.bits) + (spec.mode == Mode::symmetric ? "_sym" : "");
}

// The fixed planner: every operand, inline bytes, two threadgroup buffers.
Dispatch plan_matmul(const MatmulPlan& p, const DeviceCaps& caps) {
  g_caps = caps;
  Dispatch d;
  d.kernel = g_kernel_prefix + dtype_name(p.out_dtype);
  d.threadgroups = {static_cast<std::uint32_t>(p.N), static_cast<std::uint32_t>(p.M),
                    static_cast<std::uint32_t>(p.batch.count)};
  d.threads = {32, 2, 1};
  FakeParams params{p.M, p.N, p.K, p.batch.count, static_cast<std::int64_t>(p.batch.shape.size()),
                    p.spec.group_size, p.spec.mode == Mode::symmetric};
  std::vector<std::uint8_t> bytes(sizeof params);
  std::memcpy(bytes.data(), &params, sizeof params);
  d.buffers = {{0, Operand::wq, {}},        {1, Operand::scales, {}},   {2, Operand::biases, {}},
               {3, Operand::x, {}},         {4, Operand::y, {}},        {5, Operand::bytes, bytes},
               {6, Operand::batch_shape, {}}, {7, Operand::batch_strides, {}}};
  d.threadgroup_memory = {10, 33};
  return d;
}
}  // namespace metal
}  // namespace onebit

int main(int argc, char** argv) {
  fake::set_kernel(gpu);
  const std::string scenario = argc > 1 ? argv[1] : "";
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

  if (scenario == "caps") {  // argv[2]: expected NAX flag
    CHECK(metal_backend().available());
    const metal::DeviceCaps& caps = metal::default_device()->caps;
    CHECK(caps.name == "Fake GPU" && caps.simd_width == 32);
    CHECK(caps.max_threads_per_threadgroup == 1024 && caps.max_threadgroup_memory == 32768);
    CHECK(caps.nax == (argc > 2 && std::string(argv[2]) == "1"));
  } else if (scenario == "library") {
    // argv[2]: language version every compile must have set ("3.1"), argv[3]
    // and argv[4]: the NAX and bfloat flags the planner must get, argv[5]
    // and argv[6]: run-time compiles and metallib loads, over three products.
    int major = 0, minor = 0;
    CHECK(std::sscanf(argv[2], "%d.%d", &major, &minor) == 2);
    for (int i = 0; i < 3; ++i) run_and_compare(Case(DType::float32, 1, 1, false));
    const fake::Counters n = fake::counters();
    for (const auto& compile : n.compiles) CHECK(compile.second == ((unsigned long)major << 16 | minor));
    CHECK(g_caps.nax_kernels == (std::string(argv[3]) == "1"));
    CHECK(g_caps.bfloat_kernels == (std::string(argv[4]) == "1"));
    CHECK(n.source_compiles == std::atoi(argv[5]) && n.data_loads == std::atoi(argv[6]));
    const metal::LibraryStatus lib = metal::stats_snapshot().library;
    CHECK(lib.loaded && lib.nax_kernels == g_caps.nax_kernels && lib.bfloat_kernels == g_caps.bfloat_kernels);
    CHECK(lib.families.size() == 3);
    for (const metal::FamilyStatus& f : lib.families) {
      std::printf("%s: %s %s %d %s\n", f.source.c_str(), f.origin.c_str(), f.language.c_str(), f.ok,
                  f.error.c_str());
      if (f.origin == "compiled") CHECK(f.ok && f.language == argv[2]);
      if (f.origin == "skipped") CHECK(f.source == "qmm_nax.metal" && major < 4 && !f.ok);
    }
    check_clean();
  } else if (scenario == "family_failure") {  // FAKE_METAL_FAIL_COMPILE=other.metal
    for (int i = 0; i < 3; ++i) run_and_compare(Case(DType::float32, 1, 1, false));  // fake.metal works
    g_kernel_prefix = "fake_other_";
    for (int i = 0; i < 2; ++i)
      expect_error(Case(DType::float32, 1, 1, false),
                   "kernel 'fake_other_float32' is not in the Metal library: other.metal failed to compile "
                   "at Metal 3.1: fake compile error");
    CHECK(fake::counters().source_compiles == 2);  // fake.metal and other.metal, once each
    const metal::LibraryStatus lib = metal::stats_snapshot().library;
    bool seen = false;
    for (const metal::FamilyStatus& f : lib.families)
      if (f.source == "other.metal") {
        seen = true;
        CHECK(!f.ok && f.origin == "compiled" && f.language == "3.1");
        CHECK(f.error.find("fake compile error") != std::string::npos);
      } else if (f.source == "fake.metal") {
        CHECK(f.ok && f.error.empty());
      }
    CHECK(seen);
    check_clean();
  } else if (scenario == "misaligned") {
    // x 2 bytes past a page (not a multiple of its float32 element) and wq 1
    // byte past one: both copied into buffers of their own, bound at offset 0.
    Case c(DType::float32, 1, 1, false, 2);
    Array wq(DType::uint32, c.wq.ref.shape, 1);
    std::memcpy(wq.ref.data, c.wq.ref.data, c.wq.ref.size() * 4);
    c.plan.wq.data = wq.ref.data;
    const metal::StatsSnapshot before = metal::stats_snapshot();
    run_and_compare(c);
    const metal::StatsSnapshot d = stats_delta(before);
    CHECK(d.copied_misaligned == 2 && d.wrapped == 3 && d.copied_inputs == 0 && d.copied_outputs == 0);
    const fake::Dispatched g = fake::dispatched().at(0);
    for (unsigned long i : {0ul, 3ul}) CHECK(!g.buffers.at(i).no_copy && g.buffers.at(i).offset == 0);
    check_clean();
  } else if (scenario == "static_threadgroup_memory") {  // FAKE_METAL_STATIC_TG_MEMORY; argv[2]: "fits" or not
    // The fixed planner sets 10 + 33 bytes, 16 + 48 once rounded; the fake
    // device has 32768.
    if (std::string(argv[2]) == "fits") {
      run_and_compare(Case(DType::float32, 1, 1, false));
    } else {
      expect_error(Case(DType::float32, 1, 1, false),
                   "fake_qmm_float32: 32824 bytes of threadgroup memory (32760 static in the pipeline + 64 set "
                   "at run time) exceed the device's 32768");
      CHECK(fake::dispatched().empty());
    }
    check_clean();
  } else if (scenario == "many_batches") {
    // 4096 batches of W against one x: the batch dims stay 8 + 16 bytes,
    // inline, however many batches there are.
    Case c(DType::float32, 1, 4096, false, 20, 2, 3, 64);
    run_and_compare(c);
    const fake::Dispatched g = fake::dispatched().at(0);
    CHECK(g.grid[2] == 4096);
    CHECK(g.buffers.at(6).buffer_id == 0 && g.buffers.at(6).length == 8);
    CHECK(g.buffers.at(7).buffer_id == 0 && g.buffers.at(7).length == 16);
    check_clean();
  } else if (scenario == "unavailable") {
    CHECK(!metal_backend().available());
  } else if (scenario == "zero_copy") {
    Case c(DType::float32, 2, 1, false);  // x batch 2 over one weight matrix
    Array out(DType::float32, {2, 3, 5}, 12);
    const metal::StatsSnapshot before = metal::stats_snapshot();
    run_and_compare(c, &out);
    const metal::StatsSnapshot d = stats_delta(before);
    CHECK(d.wrapped == 5 && d.copied_inputs == 0 && d.copied_outputs == 0);
    const std::vector<fake::Dispatched> log = fake::dispatched();
    CHECK(log.size() == 1 && log[0].kernel == "fake_qmm_float32");
    const fake::Dispatched& g = log[0];
    for (unsigned long i : {0ul, 1ul, 2ul, 3ul, 4ul}) CHECK(g.buffers.at(i).no_copy);
    CHECK(g.buffers.at(3).data() == c.x.ref.data && g.buffers.at(3).offset == 20);
    CHECK(g.buffers.at(4).data() == out.ref.data && g.buffers.at(4).offset == 12);
    CHECK(reinterpret_cast<std::uintptr_t>(g.buffers.at(3).contents) % page == 0);
    CHECK(g.buffers.at(3).length % page == 0);
    CHECK(g.buffers.at(5).buffer_id == 0 && g.buffers.at(5).length == sizeof(FakeParams));
    // The batch dims (x's batch of 2 over one W) travel inline (setBytes), not
    // in buffers made per call: shape {2}, strides {M * K for x, 0 for W}.
    const std::int64_t shape[1] = {2}, strides[2] = {3 * 128, 0};
    CHECK(g.buffers.at(6).buffer_id == 0 && g.buffers.at(6).length == 8);
    CHECK(g.buffers.at(7).buffer_id == 0 && g.buffers.at(7).length == 16);
    CHECK(std::memcmp(g.buffers.at(6).bytes.data(), shape, 8) == 0);
    CHECK(std::memcmp(g.buffers.at(7).bytes.data(), strides, 16) == 0);
    CHECK(g.tg_memory.at(0) == 16 && g.tg_memory.at(1) == 48);  // rounded up to 16 bytes
    CHECK(g.grid[0] == 5 && g.grid[1] == 3 && g.grid[2] == 2);
    CHECK(g.threads[0] == 32 && g.threads[1] == 2 && g.threads[2] == 1);
    CHECK(!fake::counters().fast_math);
    check_clean();
  } else if (scenario == "symmetric") {
    Case c(DType::float32, 1, 1, true);
    run_and_compare(c);
    const fake::Dispatched g = fake::dispatched().at(0);
    CHECK(g.buffers.at(2).buffer_id == g.buffers.at(1).buffer_id);  // biases bound to scales
    check_clean();
  } else if (scenario == "widen") {
    Case c(DType::float16, 1, 1, false);  // float16 x, float32 scales: out float32
    const metal::StatsSnapshot before = metal::stats_snapshot();
    run_and_compare(c);
    CHECK(stats_delta(before).wrapped == 4);
    CHECK(!fake::dispatched().at(0).buffers.at(3).no_copy);  // x widened into a new buffer
    check_clean();
  } else if (scenario == "fallback") {  // FAKE_METAL_REFUSE_NOCOPY=1
    Case c(DType::float32, 2, 2, false);
    const metal::StatsSnapshot before = metal::stats_snapshot();
    run_and_compare(c);
    const metal::StatsSnapshot d = stats_delta(before);
    CHECK(d.wrapped == 0 && d.copied_inputs == 4 && d.copied_outputs == 1);
    check_clean();
  } else if (scenario == "empty") {
    Case zero_k(DType::float32, 1, 1, false, 20, 3, 5, 0);
    std::vector<float> out(zero_k.out_elems(), 7.0f);
    metal_backend().run(zero_k.plan, out.data());
    for (float v : out) CHECK(v == 0.0f);
    Case no_rows(DType::float32, 1, 1, false, 20, 0, 5, 64);
    metal_backend().run(no_rows.plan, nullptr);
    CHECK(fake::dispatched().empty());
  } else if (scenario == "compile_error") {  // FAKE_METAL_FAIL_COMPILE=1
    // Every family fails, once: later calls report the same, compiling nothing.
    for (int i = 0; i < 3; ++i)
      expect_error(Case(DType::float32, 1, 1, false), "fake.metal failed to compile at Metal 3.1: fake compile error");
    CHECK(fake::counters().source_compiles == 2);  // fake.metal, other.metal (qmm_nax.metal: macOS 14)
    check_clean();
  } else if (scenario == "gpu_error") {  // FAKE_METAL_FAIL_COMMAND=1
    expect_error(Case(DType::float32, 1, 1, false), "fake_qmm_float32 failed on the GPU: fake GPU fault");
    check_clean();
  } else if (scenario == "missing_kernel") {
    g_kernel_prefix = "nonexistent_";
    expect_error(Case(DType::float32, 1, 1, false), "kernel 'nonexistent_float32' is not in the Metal library");
  } else if (scenario == "threads") {  // one library and one pipeline, whatever the concurrency
    Case c(DType::float32, 2, 1, false);
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t)
      pool.emplace_back([&c] {
        for (int i = 0; i < 5; ++i) run_and_compare(c);
      });
    for (std::thread& t : pool) t.join();
    const fake::Counters n = fake::counters();
    CHECK(n.dispatches == 20 && n.pipelines == 1 && n.source_compiles == 2 && n.data_loads == 0);
    check_clean();
  } else {
    std::printf("FAILED: unknown scenario '%s'\n", scenario.c_str());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}

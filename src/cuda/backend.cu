// Host side of the CUDA backend: kernel choice, batch loop, launch checks,
// and the memory helpers the binding uses for NumPy inputs.
#include <climits>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "api.h"
#include "common/format_values.h"
#include "launch.h"
#include "qmm_simt.cuh"  // the tile shape, for the grid limit
#include "qmm_tc.cuh"    // its shared memory, for the choice
#include "qmv_digits.cuh"  // its cluster rule, for the choice
#include "qmv_stream.cuh"  // its shared memory, for the choice

namespace onebit {
namespace cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("[cuda] ") + what + ": " + cudaGetErrorString(err));
}

}  // namespace

const DeviceLimits& device_limits() {
  static DeviceLimits cache[64];
  static std::once_flag asked[64];
  int device = 0;
  cudaGetDevice(&device);
  DeviceLimits& d = cache[device & 63];
  std::call_once(asked[device & 63], [&] {  // after the first call: one atomic load, no lock
    int sms = 0, per_sm = 0, per_block = 0, clusters = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device);
    cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    cudaDeviceGetAttribute(&clusters, cudaDevAttrClusterLaunch, device);
    d = {device, sms > 0 ? sms : 1, static_cast<std::size_t>(per_sm), static_cast<std::size_t>(per_block),
         clusters != 0};
  });
  return d;
}

namespace {

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// x and W rows start at 16-byte boundaries (in every batch entry too): the bases do, and
// a row of each is a multiple of 16 bytes (K is a multiple of 32 on the qmv path).
bool rows_aligned16(const MatmulPlan& plan) {
  return aligned16(plan.x.data) && aligned16(plan.wq.data) &&
         plan.K * dtype_size(plan.x.dtype) % 16 == 0 && plan.K * plan.spec.bits / 32 % 4 == 0;
}

// The opt-in M = 1 kernels run only where their variable is "1" (read each call):
// qmv_digits_t (PYONEBIT_CUDA_DIGITS) is slower than qmv_stream_t at every shape measured
// (docs/cuda.md), kept for float32 x and as the base of M > 1; qmv_lut_t
// (PYONEBIT_CUDA_LUT, the lookup variant of qmv_stream_t) at four of the five shapes
// measured and in the decode stream (its table build costs more than the lookups save).
bool opted_in(const char* variable) {
  const char* v = std::getenv(variable);
  return v && std::string(v) == "1";
}

// The matrix-vector kernels read with 16-byte loads only; unaligned data takes the tiled one.
// M = 1 at 1 bit: the integer tensor-core one where asked for (opted_in), K is whole
// 128-value chunks, W rows are 16-byte aligned and a cluster's slices hold K (digit_cluster;
// 32-bit offsets); else, where a row is whole 128-value chunks (their offsets are 32-bit: fewer
// than 2^31 words of W), the lookup one where asked for (opted_in) and its tables fit a
// block's shared memory, or the streaming one where all of x does; else the staged one.
// 1 bit with float16 / bfloat16 x takes the tensor-core one for 2 <= M <= 16 (float32 x
// would lose bits in the mma). The tensor-core qmm: 1 bit, float16 / bfloat16 x, 16-byte x
// rows, where the device allows a block its shared memory.
Kernel choose(const MatmulPlan& plan) {
  if (!plan.transpose) return Kernel::qmm_n;
  const bool aligned = rows_aligned16(plan);
  const DeviceLimits& device = device_limits();
  // One row of x at 1 bit, K whole 128-value chunks, 32-bit offsets: the M = 1 1-bit kernels' case.
  const bool one_bit_row = plan.M == 1 && plan.spec.bits == 1 && plan.K % 128 == 0 &&
                           plan.N * (plan.K / 32) < (std::int64_t(1) << 31);
  static_assert(kDigitChunk == 128 && kStreamChunk == 128, "the kernels' chunks are the rule's");
  if (one_bit_row && opted_in("PYONEBIT_CUDA_DIGITS") && aligned16(plan.wq.data) &&
      digit_smem_bytes(kDigitMaxChunks, 128) <= device.shared_per_block &&
      digit_cluster(static_cast<int>(plan.N), static_cast<int>(plan.K),
                    digit_max_chunks(plan.spec.group_size, static_cast<int>(dtype_size(plan.scales.dtype))),
                    device.multiprocessors, device.clusters ? kDigitMaxCluster : 1) > 0)
    return Kernel::qmv_digits_t;
  const bool streams = aligned && one_bit_row && plan.K <= kStreamMaxK;  // the stream kernel's template
  if (streams && lut_smem_bytes(static_cast<int>(plan.K)) <= device.shared_per_block && opted_in("PYONEBIT_CUDA_LUT"))
    return Kernel::qmv_lut_t;
  if (streams && stream_smem_bytes(static_cast<int>(plan.K)) <= device.shared_per_block)
    return Kernel::qmv_stream_t;
  if (aligned && plan.M > kStagedMaxM && plan.M <= kTcvMaxM && plan.spec.bits == 1 &&
      plan.x.dtype != DType::float32)
    return Kernel::qmv_tc_t;
  if (plan.M <= kQmvMaxM) {
    if (!aligned) return Kernel::qmm_t;
    return plan.M <= kStagedMaxM ? Kernel::qmv_staged_t : Kernel::qmv_t;
  }
  if (plan.spec.bits == 1 && plan.x.dtype != DType::float32 && aligned16(plan.x.data) &&
      qmm_tc_smem_bytes() <= device.shared_per_block)
    return Kernel::qmm_tc_t;
  return Kernel::qmm_t;
}

// Programmatic dependent launches unless PYONEBIT_CUDA_PDL=0 (read once; for comparisons).
bool early_launches() {
  static const bool on = [] {
    const char* v = std::getenv("PYONEBIT_CUDA_PDL");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

struct Span {
  const char* begin;
  const char* end;
  bool overlaps(const Span& o) const { return begin < o.end && o.begin < end; }
};

// Each stream's last kernel output. A kernel launched early may read W, scales and biases
// while the previous kernel on its stream runs (codes.cuh), so it is launched normally when
// they overlap what that kernel writes.
std::mutex last_out_mutex;
std::unordered_map<cudaStream_t, Span> last_out;

bool early_launch_allowed(cudaStream_t stream, const Span (&read_early)[3], const Span& out) {
  std::lock_guard<std::mutex> lock(last_out_mutex);
  const auto it = last_out.find(stream);
  bool early = early_launches();
  if (it != last_out.end())
    for (const Span& r : read_early) early = early && !r.overlaps(it->second);
  last_out[stream] = out;
  return early;
}

void launch_bits(int bits, Kernel kernel, DType x, DType s, const KernelArgs& args,
                 cudaStream_t stream, bool early) {
  switch (bits) {
#define ONEBIT_CASE(unused, b) \
  case b: return launch<b>(kernel, x, s, args, stream, early);
    ONEBIT_FOR_EACH_BITS(ONEBIT_CASE, _)
#undef ONEBIT_CASE
  }
  throw std::logic_error("[cuda] no kernels for bits=" + std::to_string(bits));
}

}  // namespace

int device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

std::string device_error() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  return n ? "" : "no CUDA device";
}

std::string choose_kernel(const MatmulPlan& plan) {
  switch (choose(plan)) {
    case Kernel::qmv_digits_t: return "qmv_digits_t";
    case Kernel::qmv_lut_t: return "qmv_lut_t";
    case Kernel::qmv_stream_t: return "qmv_stream_t";
    case Kernel::qmv_tc_t: return "qmv_tc_t";
    case Kernel::qmv_staged_t: return "qmv_staged_t";
    case Kernel::qmv_t: return "qmv_t";
    case Kernel::qmm_tc_t: return "qmm_tc_t";
    case Kernel::qmm_t: return "qmm_simt_t";
    default: return "qmm_simt_n";
  }
}

void quantized_matmul(const MatmulPlan& plan, void* out, std::uintptr_t stream_handle) {
  const char* op = "quantized_matmul";
  if (plan.layout != WeightLayout::mlx)
    throw ValueError(std::string("[") + op + "] the cuda backend takes layout='mlx' only");
  if (plan.M > INT_MAX || plan.N > INT_MAX || plan.K > INT_MAX ||
      (plan.N + kTileN - 1) / kTileN > 65535)
    throw ValueError(std::string("[") + op + "] the cuda backend takes M, K < 2^31 and N < 2^22");
  if (plan.batch.count == 0 || plan.M == 0 || plan.N == 0) return;
  const auto stream = reinterpret_cast<cudaStream_t>(stream_handle);
  const std::size_t xsize = dtype_size(plan.x.dtype), ssize = dtype_size(plan.scales.dtype);
  const std::size_t osize = dtype_size(plan.out_dtype);
  const std::int64_t w_words = plan.wq.shape[plan.wq.shape.size() - 2] *
                               plan.wq.shape.back();  // per matrix
  const std::int64_t s_count = plan.scales.shape[plan.scales.shape.size() - 2] *
                               plan.scales.shape.back();
  const Kernel kernel = choose(plan);
  const bool symmetric = plan.spec.mode == Mode::symmetric;
  for (std::int64_t b = 0; b < plan.batch.count; ++b) {
    const std::int64_t w_index = plan.batch.w_offset(b);
    KernelArgs a{};
    a.x = static_cast<const char*>(plan.x.data) + plan.batch.x_offset(b) * xsize;
    a.wq = static_cast<const std::uint32_t*>(plan.wq.data) + w_index * w_words;
    a.scales = static_cast<const char*>(plan.scales.data) + w_index * s_count * ssize;
    a.biases = symmetric ? nullptr
                         : static_cast<const char*>(plan.biases.data) + w_index * s_count * ssize;
    a.out = static_cast<char*>(out) + b * plan.M * plan.N * osize;
    a.M = static_cast<int>(plan.M), a.N = static_cast<int>(plan.N), a.K = static_cast<int>(plan.K);
    a.group_size = plan.spec.group_size;
    a.symmetric = symmetric;
    if (a.K == 0) {  // an empty sum: zeros
      check(cudaMemsetAsync(a.out, 0, plan.M * plan.N * osize, stream), "memset");
      continue;
    }
    const char* wq = reinterpret_cast<const char*>(a.wq);
    const char* sc = static_cast<const char*>(a.scales);
    const char* bi = static_cast<const char*>(a.biases);
    const Span read_early[3] = {{wq, wq + w_words * 4}, {sc, sc + s_count * ssize},
                                {bi, bi ? bi + s_count * ssize : bi}};
    const char* o = static_cast<const char*>(a.out);
    const bool early = early_launch_allowed(stream, read_early, {o, o + plan.M * plan.N * osize});
    launch_bits(plan.spec.bits, kernel, plan.x.dtype, plan.scales.dtype, a, stream, early);
    check(cudaGetLastError(), "kernel launch");
  }
}

void* device_alloc(std::size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
  return p;
}

void device_free(void* ptr) { cudaFree(ptr); }

void copy_to_device(void* dst, const void* src, std::size_t bytes, std::uintptr_t stream) {
  if (bytes)
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice,
                          reinterpret_cast<cudaStream_t>(stream)), "copy to device");
}

void copy_to_host(void* dst, const void* src, std::size_t bytes, std::uintptr_t stream) {
  if (bytes)
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost,
                          reinterpret_cast<cudaStream_t>(stream)), "copy to host");
}

void synchronize(std::uintptr_t stream) {
  check(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream)), "synchronize");
}

int current_device() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

}  // namespace cuda
}  // namespace onebit

// The Metal planner: kernel choice, grid and bindings for every operation.
// Geometry comes from kernels/geometry.h and the constant structs from
// kernels/params.h, the same headers the shaders compile, so a change of tile
// size or threads per threadgroup cannot leave host and shader disagreeing.
#include "planner.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "../common/checks.h"
#include "kernels/geometry.h"
#include "kernels/params.h"

namespace onebit {
namespace metal {

namespace {

using namespace shader;

static_assert(sizeof(MatmulParams) == 16 && sizeof(QuantizeParams) == 8,
              "kernels/params.h structs must have the same layout in MSL and C++");

// Matrix-vector x vs. matrix-matrix: the vector kernels read each W element
// once per output row of x and stream W at full bandwidth; qmm tiles M by 32,
// so for M = 1 it would waste 31/32 of its multiplies and staging.
constexpr std::int64_t kVectorMaxM = 1;

// qmv_quad serves K = 64 and 128: a qmv simdgroup covers qmv_block_k(bits)
// >= 1024 values of K per step, so with K <= 128 at most 4 of its 32 lanes
// would work; a quad of 4 lanes per row keeps every lane busy.
constexpr std::int64_t kQuadK[] = {64, 128};

// qvm_split_k from this K on. qvm gives one simdgroup all of K for 128
// columns, which leaves most of the GPU idle unless N is huge and makes each
// lane walk K/8 rows; splitting K over 8 simdgroups multiplies the parallel
// work by 8 at the price of one threadgroup-memory reduction. From K = 1024
// each simdgroup still walks >= 128 rows (16 per lane), which amortises it.
constexpr std::int64_t kSplitKMinK = 1024;

// Kernels index with int32 and overshoot a dimension by at most one tile.
constexpr std::int64_t kMaxDim = std::numeric_limits<std::int32_t>::max() / 2;

std::int32_t dim32(std::int64_t v, const char* what, const char* op) {
  if (v > kMaxDim)
    value_error(op, std::string(what) + "=" + std::to_string(v) +
                        " is too large for the Metal kernels (at most " +
                        std::to_string(kMaxDim) + ")");
  return static_cast<std::int32_t>(v);
}

std::uint32_t grid_dim(std::int64_t items, std::int64_t per_threadgroup, const char* op) {
  const std::int64_t n = (items + per_threadgroup - 1) / per_threadgroup;
  if (n > std::numeric_limits<std::uint32_t>::max()) value_error(op, "grid too large for Metal");
  return static_cast<std::uint32_t>(n);
}

void check_caps(const DeviceCaps& caps, const Dispatch& d, const char* op) {
  if (caps.simd_width != kSimdWidth)
    value_error(op, "the Metal kernels need a simdgroup width of " + std::to_string(kSimdWidth) +
                        ", device '" + caps.name + "' has " + std::to_string(caps.simd_width));
  const std::int64_t threads = std::int64_t{d.threads[0]} * d.threads[1] * d.threads[2];
  if (threads > caps.max_threads_per_threadgroup)
    value_error(op, "kernel " + d.kernel + " needs " + std::to_string(threads) +
                        " threads per threadgroup, device '" + caps.name + "' allows " +
                        std::to_string(caps.max_threads_per_threadgroup));
  std::int64_t memory = 0;
  for (std::int64_t m : d.threadgroup_memory) memory += m;
  if (memory > caps.max_threadgroup_memory)
    value_error(op, "kernel " + d.kernel + " needs " + std::to_string(memory) +
                        " bytes of threadgroup memory, device '" + caps.name + "' has " +
                        std::to_string(caps.max_threadgroup_memory));
}

template <class P>
Binding bytes_binding(int index, const P& params) {
  Binding b{index, Operand::bytes, std::vector<std::uint8_t>(sizeof(P))};
  std::memcpy(b.bytes.data(), &params, sizeof(P));
  return b;
}

bool is_quad_k(std::int64_t K) {
  for (std::int64_t k : kQuadK)
    if (K == k) return true;
  return false;
}

// NAX (qmm_t_nax): only where a kernel exists, i.e. transposed products of
// half or bfloat activations (kernels/qmm_nax.h says why not qmm_n or
// float32); automatically only on a NAX device and from one full tile of
// rows: the tensor op runs 32 x 32 tiles, and below that qmm_t's 8x8
// simdgroup matrices waste less on padding rows.
constexpr std::int64_t kNaxMinM = kNaxBM;

bool use_nax(const MatmulPlan& p, const DeviceCaps& caps) {
  // "Exists" includes the library: a metallib or run-time compile without
  // Metal 4 has no qmm_t_nax, whatever the device or PYONEBIT_NAX say.
  const bool exists =
      caps.nax_kernels && p.transpose && p.M > kVectorMaxM && p.out_dtype != DType::float32;
  switch (caps.nax_policy) {
    case NaxPolicy::off: return false;
    case NaxPolicy::on: return exists;
    case NaxPolicy::automatic: return exists && caps.nax && p.M >= kNaxMinM;
  }
  return false;
}

// The kernel template for a matmul, by the rules above.
const char* choose_matmul_kernel(const MatmulPlan& p, const DeviceCaps& caps) {
  if (use_nax(p, caps)) return "qmm_t_nax";
  if (p.M > kVectorMaxM) return p.transpose ? "qmm_t" : "qmm_n";
  if (!p.transpose) return p.K >= kSplitKMinK ? "qvm_split_k" : "qvm";
  if (is_quad_k(p.K)) return "qmv_quad";
  const bool aligned = p.K % qmv_block_k(p.spec.bits) == 0 && p.N % kQmvRowsPerThreadgroup == 0;
  return aligned ? "qmv_fast" : "qmv";
}

constexpr std::int64_t kFloat = sizeof(float);

// bfloat16 without bfloat kernels (macOS 13: Metal 3.0 has no bfloat) is an
// error, not a float32 fallback. A fallback (widen x, scales and biases to
// float32, run the float32 kernel, round the result once) would equal the
// qmv/qvm/qmm/quantize/dequantize bfloat kernels bit for bit, since they
// convert T to float on load and round to T once on store; not the NAX
// kernels, which stage dequantized weights in T (moot on macOS 13). It would
// also double the bytes read for x and hide the cost; macOS 14 is the floor.
void check_dtype(DType dtype, const DeviceCaps& caps, const char* op) {
  if (dtype == DType::bfloat16 && !caps.bfloat_kernels)
    value_error(op, "bfloat16 on Metal needs the bfloat kernels, which need Metal 3.1 (macOS 14); "
                    "the Metal library of device '" + caps.name +
                    "' has none. Use float16 or float32, or the CPU backend");
}

}  // namespace

NaxPolicy nax_policy_from_env() {
  const char* v = std::getenv("PYONEBIT_NAX");
  const std::string s = v ? v : "";
  if (s.empty() || s == "auto") return NaxPolicy::automatic;
  if (s == "on") return NaxPolicy::on;
  if (s == "off") return NaxPolicy::off;
  value_error("quantized_matmul", "PYONEBIT_NAX='" + s + "' is not one of auto, on, off");
}

const char* operand_name(Operand operand) {
  switch (operand) {
    case Operand::wq: return "wq";
    case Operand::scales: return "scales";
    case Operand::biases: return "biases";
    case Operand::x: return "x";
    case Operand::y: return "y";
    case Operand::batch_shape: return "batch_shape";
    case Operand::batch_strides: return "batch_strides";
    case Operand::bytes: return "bytes";
  }
  return "?";
}

std::string kernel_name(const char* kernel, DType dtype, const QuantSpec& spec) {
  return std::string(kernel) + "_" + dtype_name(dtype) + "_gs_" + std::to_string(spec.group_size) +
         "_b_" + std::to_string(spec.bits) + (spec.mode == Mode::symmetric ? "_sym" : "");
}

Dispatch plan_matmul(const MatmulPlan& p, const DeviceCaps& caps) {
  const char* op = "quantized_matmul";
  check_dtype(p.out_dtype, caps, op);
  MatmulParams params;
  params.M = dim32(p.M, "M", op);
  params.N = dim32(p.N, "N", op);
  params.K = dim32(p.K, "K", op);
  params.batch_ndim = dim32(static_cast<std::int64_t>(p.batch.shape.size()), "batch dims", op);
  const std::string base = choose_matmul_kernel(p, caps);

  Dispatch d;
  d.kernel = kernel_name(base.c_str(), p.out_dtype, p.spec);
  d.threadgroups[2] = grid_dim(p.batch.count, 1, op);
  if (base == "qmm_t_nax") {
    const std::int64_t t = static_cast<std::int64_t>(dtype_size(p.out_dtype));
    d.threadgroups[0] = grid_dim(p.N, kNaxBN, op);
    d.threadgroups[1] = grid_dim(p.M, kNaxBM, op);
    d.threads = {kNaxThreads, 1, 1};
    d.threadgroup_memory = {kNaxBM * p.spec.group_size * t, kNaxBN * p.spec.group_size * t,
                            kNaxBM * kFloat};
  } else if (base == "qmm_t" || base == "qmm_n") {
    d.threadgroups[0] = grid_dim(p.N, kQmmBN, op);
    d.threadgroups[1] = grid_dim(p.M, kQmmBM, op);
    d.threads = {kQmmThreads, 1, 1};
    d.threadgroup_memory = {kQmmBM * kQmmBK * kFloat, kQmmBK * kQmmBN * kFloat,
                            kQmmBM * kQmmBN * kFloat};
  } else if (base == "qvm_split_k") {
    d.threadgroups[0] = grid_dim(p.N, kQvmColumnsPerSimdgroup, op);
    d.threads = {kSimdWidth * kQvmSplitSimdgroups, 1, 1};  // the kernel indexes lid.x
    d.threadgroup_memory = {kQvmSplitSimdgroups * kQvmColumnsPerSimdgroup * kFloat};
  } else if (base == "qvm") {
    d.threadgroups[0] = grid_dim(p.N, kQvmSimdgroups * kQvmColumnsPerSimdgroup, op);
    d.threads = {kSimdWidth, kQvmSimdgroups, 1};
  } else if (base == "qmv_quad") {
    d.threadgroups[0] = grid_dim(p.N, kQuadRowsPerThreadgroup, op);
    d.threads = {kSimdWidth, kQuadSimdgroups, 1};
  } else {  // qmv_fast, qmv
    d.threadgroups[0] = grid_dim(p.N, kQmvRowsPerThreadgroup, op);
    d.threads = {kSimdWidth, kQmvSimdgroups, 1};
  }
  if (p.M == 0 || p.N == 0) d.threadgroups = {0, 0, 0};

  // README.md "Matmul kernels": symmetric mode binds the scales again as biases.
  const bool symmetric = p.spec.mode == Mode::symmetric;
  d.buffers = {{0, Operand::wq, {}},
               {1, Operand::scales, {}},
               {2, symmetric ? Operand::scales : Operand::biases, {}},
               {3, Operand::x, {}},
               {4, Operand::y, {}},
               bytes_binding(5, params),
               {6, Operand::batch_shape, {}},
               {7, Operand::batch_strides, {}}};
  check_caps(caps, d, op);
  return d;
}

namespace {

// quantize and dequantize share their bindings' shape: wq, scales, biases at
// 0..2 as in the matmul kernels, the float array at 3, QuantizeParams at 4.
// `items` are simdgroups (quantize: one per group) or threads (dequantize:
// one per pack), items_per_threadgroup of them per threadgroup of `threads`.
Dispatch plan_pack_kernel(const char* kernel, DType dtype, const QuantSpec& spec,
                          std::int64_t rows, std::int64_t K, std::int64_t items,
                          std::int64_t items_per_threadgroup, std::uint32_t threads,
                          Operand floats, const DeviceCaps& caps, const char* op) {
  check_dtype(dtype, caps, op);
  QuantizeParams params;
  params.rows = dim32(rows, "rows", op);
  params.K = dim32(K, "K", op);
  Dispatch d;
  d.kernel = kernel_name(kernel, dtype, spec);
  d.threadgroups = {grid_dim(items, items_per_threadgroup, op), 1, 1};
  if (items == 0) d.threadgroups = {0, 0, 0};
  d.threads = {threads, 1, 1};
  const bool symmetric = spec.mode == Mode::symmetric;
  d.buffers = {{0, Operand::wq, {}},
               {1, Operand::scales, {}},
               {2, symmetric ? Operand::scales : Operand::biases, {}},
               {3, floats, {}},
               bytes_binding(4, params)};
  check_caps(caps, d, op);
  return d;
}

}  // namespace

Dispatch plan_quantize(const QuantizePlan& p, const DeviceCaps& caps) {
  const char* op = "quantize";
  const std::int64_t groups = p.rows * (p.K / p.spec.group_size);
  return plan_pack_kernel("quantize", p.w.dtype, p.spec, p.rows, p.K, groups, kQuantizeSimdgroups,
                          kSimdWidth * kQuantizeSimdgroups, Operand::x, caps, op);
}

Dispatch plan_dequantize(const DequantizePlan& p, const DeviceCaps& caps) {
  const char* op = "dequantize";
  const std::int64_t packs = p.rows * (p.K / kPackValues);
  return plan_pack_kernel("dequantize", p.scales.dtype, p.spec, p.rows, p.K, packs,
                          kDequantizeThreads, kDequantizeThreads, Operand::y, caps, op);
}

}  // namespace metal
}  // namespace onebit

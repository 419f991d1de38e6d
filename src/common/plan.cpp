// Validation and shape logic for every public operation: the one place that
// decides what is a valid call and what its outputs look like.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "checks.h"
#include "dtype.h"
#include "format.h"
#include "half.h"
#include "onebit/onebit.h"

namespace onebit {

namespace {

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::ostringstream s;
  s << "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << (shape.size() == 1 ? ",)" : ")");
  return s.str();
}

template <int N>
std::string join(const int (&table)[N]) {
  std::ostringstream s;
  for (int i = 0; i < N; ++i) s << (i ? ", " : "") << table[i];
  return s.str();
}

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* op) {
  if (a != 0 && b > std::numeric_limits<std::int64_t>::max() / a)
    value_error(op, "array size overflows 64-bit indexing");
  return a * b;
}

std::int64_t product(const std::vector<std::int64_t>& dims, std::size_t begin, std::size_t end,
                     const char* op) {
  std::int64_t p = 1;
  for (std::size_t i = begin; i < end; ++i) p = checked_mul(p, dims[i], op);
  return p;
}

void check_float(const ArrayRef& a, const char* op, const char* name) {
  check_array(a, op, name);
  if (!is_float_dtype(a.dtype))
    type_error(op, std::string(name) + " must be float32, float16 or bfloat16, got " + dtype_of(a));
}

void check_packed(const ArrayRef& wq, const char* op) {
  check_array(wq, op, "wq");
  if (wq.dtype != DType::uint32) type_error(op, "wq must be uint32, got " + dtype_of(wq));
  if (wq.shape.size() < 2)
    value_error(op, "wq must have at least 2 dimensions, got shape " + shape_str(wq.shape));
}

// Scales/biases checks shared by dequantize and quantized_matmul: scales of the
// shape `expected` that wq (of shape wq_shape) needs. Messages are built only on failure.
// Returns the biases to store in the plan (empty ArrayRef in symmetric mode).
ArrayRef check_scales_biases(const ArrayRef& scales, const ArrayRef* biases,
                             const std::vector<std::int64_t>& expected, const QuantSpec& spec,
                             const std::vector<std::int64_t>& wq_shape, const char* op) {
  check_float(scales, op, "scales");
  if (scales.shape != expected)
    value_error(op, "scales has shape " + shape_str(scales.shape) + " but wq of shape " + shape_str(wq_shape) +
                        " with group_size=" + std::to_string(spec.group_size) + " needs " + shape_str(expected));
  if (spec.mode == Mode::symmetric) {
    if (biases) value_error(op, "biases must be None in symmetric mode");
    return ArrayRef{};
  }
  if (!biases) value_error(op, "biases are required in affine mode");
  check_float(*biases, op, "biases");
  if (biases->dtype != scales.dtype)
    type_error(op, std::string("biases dtype ") + dtype_name(biases->dtype) +
                       " does not match scales dtype " + dtype_name(scales.dtype));
  if (biases->shape != scales.shape)
    value_error(op, "biases has shape " + shape_str(biases->shape) + " but scales has shape " +
                        shape_str(scales.shape));
  return *biases;
}

// Unpacked length of a packed dimension of `words` uint32 words.
std::int64_t unpacked_length(std::int64_t words, const QuantSpec& spec, const char* op) {
  const std::int64_t bits = checked_mul(words, 32, op);
  if (bits % spec.bits != 0)
    value_error(op, "wq's packed dimension of " + std::to_string(words) +
                        " words does not hold a whole number of " + std::to_string(spec.bits) +
                        "-bit elements");
  return bits / spec.bits;
}

DType promote(DType a, DType b) { return a == b ? a : DType::float32; }

}  // namespace

void value_error(const char* op, const std::string& msg) {
  throw ValueError(std::string("[") + op + "] " + msg);
}
void type_error(const char* op, const std::string& msg) {
  throw TypeError(std::string("[") + op + "] " + msg);
}

std::string dtype_of(const ArrayRef& a) {
  return a.dtype == DType::unsupported && !a.label.empty() ? a.label : dtype_name(a.dtype);
}

void check_array(const ArrayRef& a, const char* op, const char* name) {
  for (std::int64_t d : a.shape)
    if (d < 0) value_error(op, std::string(name) + " has a negative dimension");
  if (a.data == nullptr && a.size() != 0) value_error(op, std::string(name) + " has no data");
}

void check_spec(const QuantSpec& spec, const char* op) {
  if (!format::contains(format::kBits, spec.bits))
    value_error(op, "bits=" + std::to_string(spec.bits) + " is not supported; use one of " +
                        join(format::kBits));
  if (!format::contains(format::kGroupSizes, spec.group_size))
    value_error(op, "group_size=" + std::to_string(spec.group_size) +
                        " is not supported; use one of " + join(format::kGroupSizes));
  if (spec.mode == Mode::symmetric && spec.bits != 1)
    value_error(op, "mode='symmetric' requires bits=1, got bits=" + std::to_string(spec.bits));
}

void check_quantize_call(const QuantizePlan& plan, const void* biases) {
  if (plan.spec.mode == Mode::affine && biases == nullptr)
    value_error("quantize", "biases output is required in affine mode");
  // One pass per dtype, the dtype chosen once (not per element).
  const std::int64_t n = plan.w.size();
  auto scan = [n](auto value) {
    for (std::int64_t i = 0; i < n; ++i)
      if (!std::isfinite(value(i)))
        value_error("quantize", "w contains NaN or Inf (at flat index " + std::to_string(i) + ")");
  };
  const auto* f = static_cast<const float*>(plan.w.data);
  const auto* h = static_cast<const std::uint16_t*>(plan.w.data);
  if (plan.w.dtype == DType::float32)
    scan([f](std::int64_t i) { return f[i]; });
  else if (plan.w.dtype == DType::float16)
    scan([h](std::int64_t i) { return half_to_float(h[i]); });
  else
    scan([h](std::int64_t i) { return bf16_to_float(h[i]); });
}

void check_backend_for(const MatmulPlan& plan, const std::string& backend) {
  // The layout is named literally: layout_name lives outside plan.cpp, which
  // the CUDA module links alone.
  if (plan.layout != WeightLayout::mlx && backend != "cpu")
    value_error("quantized_matmul", "layout='interleaved16' runs on the 'cpu' backend only, not on '" + backend + "'");
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32: return "float32";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::uint32: return "uint32";
    default: return "unsupported";
  }
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::float32:
    case DType::uint32: return 4;
    case DType::float16:
    case DType::bfloat16: return 2;
    default: return 0;
  }
}

std::int64_t ArrayRef::size() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

const char* mode_name(Mode mode) { return mode == Mode::affine ? "affine" : "symmetric"; }

Mode parse_mode(const std::string& name, const char* op) {
  if (name == "affine") return Mode::affine;
  if (name == "symmetric") return Mode::symmetric;
  value_error(op, "mode='" + name + "' is not supported; use 'affine' or 'symmetric'");
}

std::vector<int> supported_bits() { return {std::begin(format::kBits), std::end(format::kBits)}; }
std::vector<int> supported_group_sizes() {
  return {std::begin(format::kGroupSizes), std::end(format::kGroupSizes)};
}

QuantizePlan plan_quantize(const ArrayRef& w, const QuantSpec& spec) {
  const char* op = "quantize";
  check_spec(spec, op);
  check_float(w, op, "w");
  if (w.shape.size() < 2)
    value_error(op, "w must have at least 2 dimensions, got shape " + shape_str(w.shape));
  QuantizePlan plan;
  plan.w = w;
  plan.spec = spec;
  plan.K = w.shape.back();
  if (plan.K % spec.group_size != 0)
    value_error(op, "the last dimension of w (K=" + std::to_string(plan.K) +
                        ") must be a multiple of group_size=" + std::to_string(spec.group_size));
  plan.rows = product(w.shape, 0, w.shape.size() - 1, op);
  checked_mul(plan.rows, plan.K, op);
  plan.wq_shape = w.shape;
  plan.wq_shape.back() = format::words_per_row(plan.K, spec.bits);
  plan.scales_shape = w.shape;
  plan.scales_shape.back() = plan.K / spec.group_size;
  plan.has_biases = spec.mode == Mode::affine;
  return plan;
}

DequantizePlan plan_dequantize(const ArrayRef& wq, const ArrayRef& scales, const ArrayRef* biases,
                               const QuantSpec& spec, const DType* out_dtype) {
  return plan_dequantize_for("dequantize", wq, scales, biases, spec, out_dtype);
}

DequantizePlan plan_dequantize_for(const char* op, const ArrayRef& wq, const ArrayRef& scales,
                                   const ArrayRef* biases, const QuantSpec& spec,
                                   const DType* out_dtype) {
  check_spec(spec, op);
  check_packed(wq, op);
  DequantizePlan plan;
  plan.spec = spec;
  plan.wq = wq;
  plan.K = unpacked_length(wq.shape.back(), spec, op);
  if (plan.K % spec.group_size != 0)
    value_error(op, "K=" + std::to_string(plan.K) + " (from wq) is not a multiple of group_size=" +
                        std::to_string(spec.group_size));
  std::vector<std::int64_t> expected = wq.shape;
  expected.back() = plan.K / spec.group_size;
  plan.biases = check_scales_biases(scales, biases, expected, spec, wq.shape, op);
  plan.scales = scales;
  plan.out_dtype = out_dtype ? *out_dtype : scales.dtype;
  if (!is_float_dtype(plan.out_dtype))
    type_error(op, std::string("dtype must be float32, float16 or bfloat16, got ") +
                       dtype_name(plan.out_dtype));
  plan.rows = product(wq.shape, 0, wq.shape.size() - 1, op);
  plan.out_shape = wq.shape;
  plan.out_shape.back() = plan.K;
  checked_mul(plan.rows, plan.K, op);
  return plan;
}

MatmulPlan plan_quantized_matmul(const ArrayRef& x, const ArrayRef& wq, const ArrayRef& scales,
                                 const ArrayRef* biases, bool transpose, const QuantSpec& spec,
                                 WeightLayout layout) {
  const char* op = "quantized_matmul";
  check_spec(spec, op);
  if (layout == WeightLayout::interleaved16 && !transpose)
    value_error(op, "layout='interleaved16' requires transpose=True (it interleaves rows of W (N, K))");
  check_float(x, op, "x");
  if (x.shape.empty()) value_error(op, "x must have at least 1 dimension, got a scalar");
  check_packed(wq, op);

  MatmulPlan plan;
  plan.x = x;
  plan.wq = wq;
  plan.spec = spec;
  plan.transpose = transpose;
  plan.layout = layout;
  const std::size_t wnd = wq.shape.size();
  const std::int64_t rows = wq.shape[wnd - 2];
  const std::int64_t unpacked = unpacked_length(wq.shape[wnd - 1], spec, op);
  plan.N = transpose ? rows : unpacked;
  plan.K = transpose ? unpacked : rows;
  // Groups run along the packed axis: K when transposed, N otherwise.
  const char* grouped = transpose ? "K" : "N";
  if (unpacked % spec.group_size != 0)
    value_error(op, std::string(grouped) + "=" + std::to_string(unpacked) +
                        " (from wq) is not a multiple of group_size=" +
                        std::to_string(spec.group_size));
  std::vector<std::int64_t> expected = wq.shape;
  expected.back() = unpacked / spec.group_size;
  plan.biases = check_scales_biases(scales, biases, expected, spec, wq.shape, op);
  plan.scales = scales;

  const std::int64_t xK = x.shape.back();
  if (xK != plan.K)
    value_error(op, "x has K=" + std::to_string(xK) + " in its last dimension but wq of shape " +
                        shape_str(wq.shape) + " with transpose=" + (transpose ? "True" : "False") +
                        " expects K=" + std::to_string(plan.K));
  const bool vector_x = x.shape.size() == 1;
  plan.M = vector_x ? 1 : x.shape[x.shape.size() - 2];

  // Broadcast batch dims (right-aligned, size-1 dims stretch).
  const std::vector<std::int64_t> xb(x.shape.begin(), x.shape.end() - (vector_x ? 1 : 2));
  const std::vector<std::int64_t> wb(wq.shape.begin(), wq.shape.end() - 2);
  const std::size_t nb = std::max(xb.size(), wb.size());
  std::vector<std::int64_t> batch(nb), xstride(nb, 0), wstride(nb, 0);
  std::int64_t xs = checked_mul(plan.M, plan.K, op), ws = 1;
  for (std::size_t i = nb; i-- > 0;) {
    const std::size_t off_x = nb - xb.size(), off_w = nb - wb.size();
    const std::int64_t dx = i >= off_x ? xb[i - off_x] : 1;
    const std::int64_t dw = i >= off_w ? wb[i - off_w] : 1;
    if (dx != dw && dx != 1 && dw != 1)
      value_error(op, "batch dimensions of x " + shape_str(xb) + " and wq " + shape_str(wb) +
                          " cannot be broadcast");
    batch[i] = dx == 1 ? dw : dx;
    xstride[i] = dx == 1 ? 0 : xs;
    wstride[i] = dw == 1 ? 0 : ws;
    xs = checked_mul(xs, dx, op);
    ws = checked_mul(ws, dw, op);
  }
  const std::int64_t nbatch = product(batch, 0, nb, op);
  checked_mul(checked_mul(nbatch, plan.M, op), plan.N, op);
  for (std::size_t i = 0; i < nb; ++i) {
    if (batch[i] == 1) continue;  // always index 0: no offset
    plan.batch.shape.push_back(batch[i]);
    plan.batch.x_stride.push_back(xstride[i]);
    plan.batch.w_stride.push_back(wstride[i]);
  }
  if (plan.batch.shape.empty()) {
    plan.batch.shape = {1};
    plan.batch.x_stride = {0};
    plan.batch.w_stride = {0};
  }
  plan.batch.count = nbatch;

  plan.out_dtype = promote(x.dtype, scales.dtype);
  plan.out_shape = batch;
  if (!vector_x) plan.out_shape.push_back(plan.M);
  plan.out_shape.push_back(plan.N);
  return plan;
}

}  // namespace onebit

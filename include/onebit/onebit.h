// pyonebit C++ core: public API.
//
// Affine low-bit quantization in MLX's format (1-bit first) and quantized
// matrix products. Plain C++17, no Python: usable from any host program.
//
// Every operation is split in two steps:
//   plan_*  validates the arguments and computes the output shapes/dtypes
//           (throws onebit::ValueError / onebit::TypeError with messages of
//           the form "[op] ...");
//   run     executes a plan into caller-allocated, C-contiguous outputs.
// The split lets a host (the Python binding, a framework) allocate outputs in
// its own memory between the two steps.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

// A shared build of the library (CMakeLists.txt, BUILD_SHARED_LIBS) compiles
// with hidden visibility and defines ONEBIT_BUILD_SHARED: everything declared
// here, error types included, is what it exports. The Python extension and
// static builds export nothing.
#if defined(ONEBIT_BUILD_SHARED) && (defined(__GNUC__) || defined(__clang__))
#define ONEBIT_EXPORT_API 1
#pragma GCC visibility push(default)
#endif

namespace onebit {

// ---------------------------------------------------------------- errors
// Both derive from std::invalid_argument so C++ callers can catch either.
struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// ---------------------------------------------------------------- arrays
enum class DType : std::uint8_t { float32, float16, bfloat16, uint32, unsupported };

const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);  // 0 for unsupported

// A C-contiguous array owned by the caller. `label` names the caller's dtype
// when it is unsupported here (e.g. "int64"), so errors can name it.
struct ArrayRef {
  void* data = nullptr;
  DType dtype = DType::unsupported;
  std::vector<std::int64_t> shape;
  std::string label;

  std::int64_t size() const;  // number of elements
};

// ---------------------------------------------------------------- format
enum class Mode : std::uint8_t { affine, symmetric };

const char* mode_name(Mode mode);
Mode parse_mode(const std::string& name, const char* op);  // throws ValueError

struct QuantSpec {
  int bits = 1;
  int group_size = 128;
  Mode mode = Mode::affine;
};

// Supported values, for help texts and sweeps (the same tables validate).
std::vector<int> supported_bits();
std::vector<int> supported_group_sizes();

// ---------------------------------------------------------------- quantize
struct QuantizePlan {
  ArrayRef w;
  QuantSpec spec;
  std::int64_t rows = 0, K = 0;          // w viewed as (rows, K)
  std::vector<std::int64_t> wq_shape;    // (..., N, K*bits/32), uint32
  std::vector<std::int64_t> scales_shape;  // (..., N, K/group_size), dtype of w
  bool has_biases = true;                // false in symmetric mode
};
QuantizePlan plan_quantize(const ArrayRef& w, const QuantSpec& spec);
// Throws ValueError if w holds NaN or Inf. biases may be null in symmetric mode.
void quantize(const QuantizePlan& plan, std::uint32_t* wq, void* scales, void* biases);

// ---------------------------------------------------------------- dequantize
struct DequantizePlan {
  ArrayRef wq, scales, biases;  // biases.data == nullptr in symmetric mode
  QuantSpec spec;
  std::int64_t rows = 0, K = 0;
  DType out_dtype = DType::float32;
  std::vector<std::int64_t> out_shape;
};
// out_dtype null means "dtype of scales".
DequantizePlan plan_dequantize(const ArrayRef& wq, const ArrayRef& scales,
                               const ArrayRef* biases, const QuantSpec& spec,
                               const DType* out_dtype = nullptr);
void dequantize(const DequantizePlan& plan, void* out);

// ---------------------------------------------------------------- matmul
// transpose=true:  out = x @ W.T, W of shape (..., N, K) packed along K.
// transpose=false: out = x @ W,   W of shape (..., K, N) packed along N.
// Batch dims of x and W broadcast; a 1-D x is one row and the row axis is
// dropped from the output. Output dtype = promote(x, scales) as in MLX.
// How the elements of the weight's matrices are ordered: the words of wq
// and the groups of scales and biases, each an (N rows, C columns) matrix.
//   mlx            row by row, as MLX (and quantize) writes them.
//   interleaved16  rows in blocks of 16 (the last block has the N % 16 rows
//                  left, if any), and within a block column by column:
//                  element c of row n sits at n0 * C + c * r + (n - n0),
//                  where n0 is the block's first row (n - n % 16) and r its
//                  number of rows. The same shape and size as mlx, just
//                  permuted: one vector load gives the same word (or group
//                  factor) of 16 rows (two with AVX2), which the lookup
//                  kernels otherwise assemble by transposes on every call
//                  (see cpu_preferred_layout).
// A layout applies to wq, scales and biases together. Only transpose=true
// products and the CPU backend take interleaved16.
enum class WeightLayout : std::uint8_t { mlx, interleaved16 };
const char* layout_name(WeightLayout layout);

// out = a (uint32, float32, float16 or bfloat16, at least 2-D, C-contiguous)
// with each trailing matrix's elements reordered from one layout to the
// other; out has a's shape and dtype. Throws TypeError/ValueError (op
// "interleave16" / "deinterleave16").
void interleave16(const ArrayRef& a, void* out);
void deinterleave16(const ArrayRef& a, void* out);

// Where output batch b's operands start, computed per batch from the
// broadcast batch dims, so a plan's memory does not grow with the batch count.
// Dims of size 1 are dropped; there is always at least one dim (a lone dim of
// size 1 when x and W have no batch).
struct BatchMap {
  std::vector<std::int64_t> shape;     // the broadcast batch dims, outermost first
  std::vector<std::int64_t> x_stride;  // elements of x per step of each dim (0: broadcast)
  std::vector<std::int64_t> w_stride;  // matrices of W (wq, scales, biases) per step
  std::int64_t count = 1;              // output batches: the product of shape
  // Element offset of x's matrix and matrix index of W for batch b < count.
  std::int64_t x_offset(std::int64_t b) const { return offset(b, x_stride); }
  std::int64_t w_offset(std::int64_t b) const { return offset(b, w_stride); }

 private:
  std::int64_t offset(std::int64_t b, const std::vector<std::int64_t>& stride) const {
    std::int64_t off = 0;
    for (std::size_t i = shape.size(); i-- > 0;) {
      off += (b % shape[i]) * stride[i];
      b /= shape[i];
    }
    return off;
  }
};

struct MatmulPlan {
  ArrayRef x, wq, scales, biases;
  QuantSpec spec;
  bool transpose = true;
  WeightLayout layout = WeightLayout::mlx;
  std::int64_t M = 0, N = 0, K = 0;
  BatchMap batch;
  DType out_dtype = DType::float32;
  std::vector<std::int64_t> out_shape;
};
MatmulPlan plan_quantized_matmul(const ArrayRef& x, const ArrayRef& wq,
                                 const ArrayRef& scales, const ArrayRef* biases,
                                 bool transpose, const QuantSpec& spec,
                                 WeightLayout layout = WeightLayout::mlx);
// backend: a name from backends(); "" picks the best one.
void quantized_matmul(const MatmulPlan& plan, void* out, const std::string& backend = "");

// Names of the backends usable on this machine, best first.
std::vector<std::string> backends();

// ---------------------------------------------------------------- tracing
// What a backend dispatched: for Metal (real or emulated) the kernel, its
// threadgroups per grid and threads per threadgroup; for the CPU the kernel
// and its work split (grid = N x M x batches, threadgroup = threads used).
struct TraceEntry {
  std::string backend, kernel;
  std::uint32_t grid[3], threadgroup[3];
};
// Starts recording (nestable); returns a token for trace_stop.
std::size_t trace_start();
// Entries recorded since the matching trace_start, from every thread.
std::vector<TraceEntry> trace_stop(std::size_t token);
// ---------------------------------------------------------------- CPU backend
// Instruction-set variants of the CPU kernels ("avx512", "avx2", "neon",
// "scalar" = the reference), best first.
std::vector<std::string> cpu_kernels_compiled();   // built into this library
std::vector<std::string> cpu_kernels_supported();  // and runnable on this CPU
// The variant in use. Chosen once, on first use: the environment variable
// PYONEBIT_CPU_ISA if set (ValueError if unknown or unsupported here), else
// the best supported one.
std::string cpu_kernel_active();
// Forces a variant for this process (tests, benchmarks); ValueError as above.
void set_cpu_kernel(const std::string& name);
// The layout the active variant reads fastest for transpose=true products
// whose W is used many times (a layer): interleaved16 where the kernel it
// chooses reads it in place at every M (the lookup kernel: AVX-512 and AVX2,
// 1 bit), else mlx. Any layout works with any variant: kernels that do not
// read it convert slabs of rows per call. Which kernel runs, and why:
// choose_cpu_kernel (src/cpu/kernel_choice.cpp, docs/cpu_kernels.md).
WeightLayout cpu_preferred_layout(const QuantSpec& spec);

// Threads of the CPU kernels' persistent pool (default: available cores).
// set_num_threads throws ValueError for n < 1; it waits for a running call.
void set_num_threads(int n);
int get_num_threads();

// Reads every byte of [data, data + bytes) once with the pool's threads, as
// fast as the memory delivers, and returns the xor of all of them (so the
// reads cannot be dropped, and a test can check that every byte was read). The decode benchmark times it over a buffer larger than the
// last-level cache: the memory read bandwidth its kernels are held to.
std::uint64_t read_memory(const void* data, std::size_t bytes);

// y[r, j] += bias[j] for r < rows, j < n (y C-contiguous rows x n, in place), each sum
// as NumPy's np.add(y, bias, out=y, casting="unsafe") makes it for float32, float16 and
// bfloat16: both widened to float32, added, rounded to y's dtype (nearest even).
// QuantizedLinear's bias. Throws ValueError for other dtypes.
void add_bias(void* y, DType y_dtype, std::int64_t rows, std::int64_t n, const void* bias,
              DType bias_dtype);

namespace cpu {
// Calls with less work than this (M*N*K*bits per batch) run on the calling
// thread alone, waking no worker; 0 parallelizes everything (tests), a
// negative value restores the measured default.
void set_parallel_threshold(std::int64_t work);
}  // namespace cpu

}  // namespace onebit

#ifdef ONEBIT_EXPORT_API
#pragma GCC visibility pop
#undef ONEBIT_EXPORT_API
#endif

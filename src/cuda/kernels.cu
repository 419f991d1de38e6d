// Every kernel for one bit width (ONEBIT_CUDA_BITS, set by the build): the
// build compiles this file once per width, in parallel.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "launch.h"
#include "qmm_simt.cuh"
#include "qmm_tc.cuh"
#include "qmv.cuh"
#include "qmv_digits.cuh"
#include "qmv_staged.cuh"
#include "qmv_stream.cuh"
#include "qmv_tc.cuh"

#ifndef ONEBIT_CUDA_BITS
#error "compile with -DONEBIT_CUDA_BITS=<bits>"
#endif

namespace onebit {
namespace cuda {
namespace {

constexpr int B = ONEBIT_CUDA_BITS;

// Launches kernel, as a programmatic dependent launch when early (see allow_next_kernel),
// in clusters of `cluster` blocks where that is > 1; an error is left for cudaGetLastError.
void launch_kernel(void (*kernel)(KernelArgs), dim3 grid, dim3 block, const KernelArgs& a,
                   cudaStream_t stream, bool early, std::size_t smem = 0, int cluster = 1) {
  cudaLaunchAttribute attr[2] = {};
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = early ? 1 : 0;
  attr[1].id = cudaLaunchAttributeClusterDimension;
  attr[1].val.clusterDim.x = static_cast<unsigned>(cluster), attr[1].val.clusterDim.y = 1;
  attr[1].val.clusterDim.z = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid, config.blockDim = block, config.stream = stream;
  config.dynamicSmemBytes = smem;
  config.attrs = attr, config.numAttrs = cluster > 1 ? 2 : 1;
  cudaLaunchKernelEx(&config, kernel, a);
}

// Above 48 KB of shared memory a kernel must opt in, once per device (idempotent; the host
// chose the kernel only where the device allows a block that much). `done`: one bit per
// device ordinal, one variable per kernel instantiation.
[[maybe_unused]] void opt_in_shared(void (*kernel)(KernelArgs), std::size_t bytes, std::atomic<std::uint64_t>& done) {
  const std::uint64_t bit = std::uint64_t(1) << (device_limits().ordinal & 63);
  if (done.load(std::memory_order_relaxed) & bit) return;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  done.fetch_or(bit, std::memory_order_relaxed);
}

template <int MT, class X, class S>
void launch_qmv(const KernelArgs& a, cudaStream_t stream, bool early) {
  constexpr int rows = kQmvWarps * kQmvRows;  // per block
  launch_kernel(qmv_t<B, MT, X, S>, dim3((a.N + rows - 1) / rows), dim3(kQmvWarps * 32), a, stream,
                early);
}

// qmv_stream_t and its lookup variant qmv_lut_t (Lut): as many blocks as are resident at
// once (registers allow two a multiprocessor, shared memory may allow one), or fewer where
// the tiles run out; R rows a tile (4 from N = 4096 at group size 128: fewer shared loads of
// x per weight; else 2, where 4 leaves multiprocessors idle or spills).
template <int GS, int R, bool Lut, class X, class S>
void launch_stream_r(const KernelArgs& a, cudaStream_t stream, bool early) {
  const auto kernel = qmv_stream_t<GS, X, S, R, Lut>;
  const DeviceLimits& device = device_limits();
  static std::atomic<std::uint64_t> opted_in{0};
  opt_in_shared(kernel, Lut ? device.shared_per_block : std::min(device.shared_per_block, stream_smem_bytes(kStreamMaxK)),
                opted_in);
  const std::size_t smem = Lut ? lut_smem_bytes(a.K) : stream_smem_bytes(a.K), reserved = 1024;  // per block (sm_80+)
  const int per_sm = min(2, max(1, static_cast<int>(device.shared_per_multiprocessor / (smem + reserved))));
  const int tiles = (a.N + R - 1) / R, blocks = (tiles + kStreamWarps - 1) / kStreamWarps;
  launch_kernel(kernel, dim3(min(blocks, per_sm * device.multiprocessors)), dim3(kStreamWarps * 32), a,
                stream, early, smem);
}

template <int GS, bool Lut, class X, class S>
void launch_stream(const KernelArgs& a, cudaStream_t stream, bool early) {
  if constexpr (GS == 128) {  // smaller groups: 4 rows' factors of two items spill registers
    if (a.N >= 4096) return launch_stream_r<GS, 4, Lut, X, S>(a, stream, early);
  }
  launch_stream_r<GS, 2, Lut, X, S>(a, stream, early);
}

template <bool Lut, class X, class S>
void launch_stream_gs(const KernelArgs& a, cudaStream_t stream, bool early) {
  switch (a.group_size) {
    case 32: return launch_stream<32, Lut, X, S>(a, stream, early);
    case 64: return launch_stream<64, Lut, X, S>(a, stream, early);
    default: return launch_stream<128, Lut, X, S>(a, stream, early);
  }
}

// qmv_digits_t: clusters of digit_cluster() blocks per 128 rows, each block a slice of K.
template <int GS, class X, class S>
void launch_digits(const KernelArgs& a, cudaStream_t stream, bool early) {
  const DeviceLimits& device = device_limits();
  constexpr int max_chunks = digit_max_chunks(GS, sizeof(S));
  static std::atomic<std::uint64_t> opted_in{0};
  opt_in_shared(qmv_digits_t<GS, X, S>, digit_smem_bytes(max_chunks, GS), opted_in);
  const int ks =
      digit_cluster(a.N, a.K, max_chunks, device.multiprocessors, device.clusters ? kDigitMaxCluster : 1);
  const int per_rank = (a.K / kDigitChunk + ks - 1) / ks, row_blocks = (a.N + kDigitRows - 1) / kDigitRows;
  launch_kernel(qmv_digits_t<GS, X, S>, dim3(ks * row_blocks), dim3(kDigitWarps * 32), a, stream, early,
                digit_smem_bytes(per_rank, GS), ks);
}

template <int NT, class X, class S>
void launch_tcv(const KernelArgs& a, cudaStream_t stream, bool early) {
  const dim3 grid((a.N + kTcvRows - 1) / kTcvRows), block(kTcvWarps * 32);
  switch (a.group_size) {
    case 32: return launch_kernel(qmv_tc_t<32, NT, X, S>, grid, block, a, stream, early);
    case 64: return launch_kernel(qmv_tc_t<64, NT, X, S>, grid, block, a, stream, early);
    default: return launch_kernel(qmv_tc_t<128, NT, X, S>, grid, block, a, stream, early);
  }
}

template <int GS, class X, class S>
void launch_qmm_tc(const KernelArgs& a, cudaStream_t stream, bool early) {
  static std::atomic<std::uint64_t> opted_in{0};
  opt_in_shared(qmm_tc_t<GS, X, S>, qmm_tc_smem_bytes(), opted_in);
  const dim3 grid((a.M + kQmmM - 1) / kQmmM, (a.N + kQmmN - 1) / kQmmN), block(kQmmThreads);
  launch_kernel(qmm_tc_t<GS, X, S>, grid, block, a, stream, early, qmm_tc_smem_bytes());
}

template <class X, class S>
void launch_typed(Kernel kernel, const KernelArgs& a, cudaStream_t stream, bool early) {
  // The tensor-core matrix-vector kernel: 1 bit, float16 / bfloat16 x (the host picks it for those).
  if constexpr (B == 1 && !std::is_same<X, float>::value) {
    if (kernel == Kernel::qmv_tc_t) {
      static_assert(kTcvMaxM == 16, "one or two tiles of 8 rows of x");
      return a.M <= 8 ? launch_tcv<1, X, S>(a, stream, early) : launch_tcv<2, X, S>(a, stream, early);
    }
  }
  if constexpr (B == 1) {
    if (kernel == Kernel::qmv_digits_t) {  // M = 1, K % 128 == 0, digit_cluster() > 0
      switch (a.group_size) {
        case 32: return launch_digits<32, X, S>(a, stream, early);
        case 64: return launch_digits<64, X, S>(a, stream, early);
        default: return launch_digits<128, X, S>(a, stream, early);
      }
    }
    if (kernel == Kernel::qmv_stream_t) return launch_stream_gs<false, X, S>(a, stream, early);  // K <= kStreamMaxK
    if (kernel == Kernel::qmv_lut_t) return launch_stream_gs<true, X, S>(a, stream, early);  // lut_smem_bytes fits
  }
  if (kernel == Kernel::qmv_staged_t) {  // M = 1 (kStagedMaxM)
    constexpr int rows = kStagedWarps * kStagedRows;  // per block
    return launch_kernel(qmv_staged_t<B, X, S>, dim3((a.N + rows - 1) / rows), dim3(kStagedWarps * 32),
                         a, stream, early);
  }
  if (kernel == Kernel::qmv_t) {
    static_assert(kStagedMaxM == 1, "M = 1 takes qmv_staged_t, so qmv_t starts at 2 rows");
    if (a.M <= 2) launch_qmv<2, X, S>(a, stream, early);
    else if (a.M <= 4) launch_qmv<4, X, S>(a, stream, early);
    else launch_qmv<kQmvMaxM, X, S>(a, stream, early);
    return;
  }
  // The tensor-core kernel exists for 1 bit and float16 / bfloat16 x (the host picks it for those).
  if constexpr (B == 1 && !std::is_same<X, float>::value) {
    if (kernel == Kernel::qmm_tc_t) {
      switch (a.group_size) {
        case 32: return launch_qmm_tc<32, X, S>(a, stream, early);
        case 64: return launch_qmm_tc<64, X, S>(a, stream, early);
        default: return launch_qmm_tc<128, X, S>(a, stream, early);
      }
    }
  }
  const dim3 grid((a.M + kTileM - 1) / kTileM, (a.N + kTileN - 1) / kTileN), block(kTileThreads);
  launch_kernel(kernel == Kernel::qmm_t ? qmm_simt<B, true, X, S> : qmm_simt<B, false, X, S>, grid,
                block, a, stream, early);
}

template <class X>
void launch_x(Kernel kernel, DType s, const KernelArgs& a, cudaStream_t stream, bool early) {
  switch (s) {
    case DType::float32: return launch_typed<X, float>(kernel, a, stream, early);
    case DType::float16: return launch_typed<X, __half>(kernel, a, stream, early);
    default: return launch_typed<X, __nv_bfloat16>(kernel, a, stream, early);
  }
}

}  // namespace

template <>
void launch<B>(Kernel kernel, DType x, DType s, const KernelArgs& a, cudaStream_t stream,
               bool early) {
  switch (x) {
    case DType::float32: return launch_x<float>(kernel, s, a, stream, early);
    case DType::float16: return launch_x<__half>(kernel, s, a, stream, early);
    default: return launch_x<__nv_bfloat16>(kernel, s, a, stream, early);
  }
}

}  // namespace cuda
}  // namespace onebit

// Work decomposition of every kernel: the one definition read by the kernel
// templates (MSL) and by the planner (C++17), which derives grids,
// threadgroup sizes and threadgroup memory from it. Enums and constexpr
// functions only: they need no address space in MSL.
#pragma once

namespace onebit {
namespace shader {

enum : int {
  kSimdWidth = 32,

  // A "pack" is 32 consecutive codes: `bits` whole uint32 words, word aligned,
  // always inside one group (groups are multiples of 32). Runs of 8 codes
  // start on a byte boundary for every bit width (8 * bits bits).
  kPackValues = 32,

  // qmv / qmv_fast: 2 simdgroups per threadgroup, 4 output rows each; a lane
  // reads the same x values for all 4 rows (x sums shared across rows).
  kQmvSimdgroups = 2,
  kQmvRowsPerSimdgroup = 4,
  kQmvRowsPerThreadgroup = kQmvSimdgroups * kQmvRowsPerSimdgroup,

  // qmv_quad (K <= 128): a quad of 4 lanes per row, 16 values per lane per
  // step (a quad covers 64 values per step), 4 rows per quad.
  kQuadWidth = 4,
  kQuadValuesPerLane = 16,
  kQuadRows = 4,
  kQuadSimdgroups = 2,
  kQuadRowsPerThreadgroup = kQuadSimdgroups * (kSimdWidth / kQuadWidth) * kQuadRows,

  // qvm / qvm_split_k (y = x @ W, W packed along N): a lane owns one pack of
  // 32 output columns; a simdgroup is 4 column lanes x 8 K lanes, so it covers
  // 128 columns and reads 8 rows of W per step. qvm gives each of its 2
  // simdgroups its own columns; qvm_split_k gives its 8 simdgroups the same
  // 128 columns and a slice of K each, summed in threadgroup memory.
  kQvmLanesN = 4,
  kQvmLanesK = kSimdWidth / kQvmLanesN,
  kQvmColumnsPerSimdgroup = kQvmLanesN * kPackValues,
  kQvmSimdgroups = 2,
  kQvmSplitSimdgroups = 8,

  // qmm_t / qmm_n: a 32x32 output tile per threadgroup of 4 simdgroups (2x2,
  // 16x16 each = 2x2 simdgroup_matrix 8x8 accumulators), K steps of 32.
  kQmmBM = 32,
  kQmmBN = 32,
  kQmmBK = 32,
  kQmmSimdgroups = 4,
  kQmmThreads = kQmmSimdgroups * kSimdWidth,
  kQmmLoadRun = kQmmBM * kQmmBK / kQmmThreads,  // values each thread loads per tile

  // qmm_t_nax: a 32x32 output tile per threadgroup of 4 simdgroups, one
  // group of K per step (the tensor op's k is the group size).
  kNaxBM = 32,
  kNaxBN = 32,
  kNaxSimdgroups = 4,
  kNaxThreads = kNaxSimdgroups * kSimdWidth,
  kNaxThreadsPerRow = kNaxThreads / kNaxBM,  // threads staging one tile row

  // quantize: one simdgroup per group, 8 groups per threadgroup.
  kQuantizeSimdgroups = 8,
  // dequantize: one pack (32 values) per thread.
  kDequantizeThreads = 256,
};

// Values a qmv lane handles per step. 1-bit gets two packs (8 bytes per row)
// so a load is as wide as at 2 bits; with group_size 32 those 64 values span
// two groups, which the kernel handles segment by segment.
constexpr int qmv_values_per_lane(int bits) { return bits == 1 ? 2 * kPackValues : kPackValues; }

// K consumed per simdgroup step; qmv_fast needs K to be a multiple of it.
constexpr int qmv_block_k(int bits) { return kSimdWidth * qmv_values_per_lane(bits); }

}  // namespace shader
}  // namespace onebit

// The interleaved16 weight layout (onebit.h, WeightLayout): moving the
// elements (words of wq, groups of scales and biases) of one N-row matrix
// between it and MLX's row-by-row order.
#pragma once

#include <cstddef>
#include <cstdint>

namespace onebit {
namespace layout {

constexpr std::int64_t kBlockRows = 16;

// Rows [n0, n1) of the N x C interleaved16 matrix `src` of `elem`-byte
// elements (2 or 4), in mlx order, to dst ((n1 - n0) x C). n0 is a multiple
// of 16; n1 is one too, or N.
void deinterleave_rows(const void* src, std::size_t elem, std::int64_t N, std::int64_t C,
                       std::int64_t n0, std::int64_t n1, void* dst);

// The whole N x C mlx-order matrix `src` to interleaved16 order.
void interleave(const void* src, std::size_t elem, std::int64_t N, std::int64_t C, void* dst);

}  // namespace layout
}  // namespace onebit

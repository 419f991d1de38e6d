// The interleaved16 weight layout (onebit.h, WeightLayout): moving the words
// of one (N rows x W words) matrix between it and MLX's row-by-row order.
#pragma once

#include <cstdint>

namespace onebit {
namespace layout {

constexpr std::int64_t kBlockRows = 16;

// Rows [n0, n1) of the N-row interleaved16 matrix `src`, in mlx order, to
// dst ((n1 - n0) x W). n0 is a multiple of 16; n1 is one too, or N.
void deinterleave_rows(const std::uint32_t* src, std::int64_t N, std::int64_t W, std::int64_t n0,
                       std::int64_t n1, std::uint32_t* dst);

// The whole N x W mlx-order matrix `src` to interleaved16 order.
void interleave(const std::uint32_t* src, std::int64_t N, std::int64_t W, std::uint32_t* dst);

}  // namespace layout
}  // namespace onebit

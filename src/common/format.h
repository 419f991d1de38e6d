// The packed weight format, defined once. Everything that reads or writes
// `wq` (reference kernels, SIMD kernels, Metal shaders, validation) uses these
// definitions, so the constants below must not be restated elsewhere.
//
// wq is read as a little-endian byte stream: element k of a packed row
// occupies bits [k*bits, (k+1)*bits), least significant bit first. For bits
// 1/2/4/8 the codes never straddle a byte; for 3/5/6 they may.
#pragma once

#include <cstdint>

#include "format_values.h"

namespace onebit {
namespace format {

// Supported bit widths and group sizes (the validation tables), expanded
// from the lists in format_values.h that the shaders instantiate from.
#define ONEBIT_TABLE_ENTRY(unused, value) value,
constexpr int kBits[] = {ONEBIT_FOR_EACH_BITS(ONEBIT_TABLE_ENTRY, _)};
constexpr int kGroupSizes[] = {ONEBIT_FOR_EACH_GROUP_SIZE(ONEBIT_TABLE_ENTRY, _)};
#undef ONEBIT_TABLE_ENTRY

template <int N>
constexpr bool contains(const int (&table)[N], int value) {
  for (int v : table)
    if (v == value) return true;
  return false;
}

// 32-bit words of one packed row of K elements. K is a multiple of a group
// size (>= 32), so K*bits is always a whole number of words.
constexpr std::int64_t words_per_row(std::int64_t K, int bits) { return K * bits / 32; }

// The floor applied to the affine scale so a constant group stays finite.
constexpr float kScaleFloor = ONEBIT_SCALE_FLOOR;

// Code of element k in a packed row.
inline std::uint32_t read_code(const std::uint8_t* row, std::int64_t k, int bits) {
  const std::int64_t bit = k * bits;
  const std::int64_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  std::uint32_t v = row[byte] >> shift;
  if (shift + bits > 8) v |= static_cast<std::uint32_t>(row[byte + 1]) << (8 - shift);
  return v & ((1u << bits) - 1u);
}

// OR the code of element k into a zero-initialised packed row.
inline void write_code(std::uint8_t* row, std::int64_t k, int bits, std::uint32_t code) {
  const std::int64_t bit = k * bits;
  const std::int64_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  row[byte] = static_cast<std::uint8_t>(row[byte] | (code << shift));
  if (shift + bits > 8) row[byte + 1] = static_cast<std::uint8_t>(row[byte + 1] | (code >> (8 - shift)));
}

}  // namespace format
}  // namespace onebit

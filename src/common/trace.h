// Recording side of onebit::trace_start/trace_stop, for backends.
#pragma once

#include <cstdint>
#include <string>

namespace onebit {

// Cheap when no trace is active (one relaxed atomic load).
void trace_record(const char* backend, const std::string& kernel, const std::uint32_t grid[3],
                  const std::uint32_t threadgroup[3]);

}  // namespace onebit

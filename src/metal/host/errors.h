// Metal's NSError as text for the std::runtime_error messages of the host.
#pragma once

#include <string>

#include <Foundation/Foundation.hpp>

namespace onebit {
namespace metal {

inline std::string describe(const NS::Error* error) {
  if (error == nullptr || error->localizedDescription() == nullptr) return "no description";
  return error->localizedDescription()->utf8String();
}

}  // namespace metal
}  // namespace onebit

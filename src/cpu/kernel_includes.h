// Everything qmm_kernels.h needs from outside. Each ISA file includes this
// BEFORE it switches its target on, so these standard and shared inline
// functions are compiled for the baseline target only (see isa.h).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../common/dtype.h"
#include "../common/format.h"
#include "../common/half.h"
#include "../common/layout.h"
#include "isa.h"
#include "kernel_choice.h"
#include "reference.h"
#include "thread_pool.h"

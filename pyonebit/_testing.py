"""Hooks for tests and benchmarks, not part of the API: the Metal kernels on
the emulator, the Metal planner's and the CPU kernel choice's decisions, and
switches of the CPU kernels.
They live in the compiled binding (pyonebit._core) under private names; this
module is where their users import them from."""
from ._core import _cpu_kernel_plan as cpu_kernel_plan
from ._core import _emulated_dequantize as emulated_dequantize
from ._core import _emulated_quantize as emulated_quantize
from ._core import _metal_plan as metal_plan
from ._core import _metal_plan_dequantize as metal_plan_dequantize
from ._core import _metal_plan_quantize as metal_plan_quantize
from ._core import _set_cpu_isa as set_cpu_isa
from ._core import _set_parallel_threshold as set_parallel_threshold

__all__ = ["cpu_kernel_plan", "emulated_dequantize", "emulated_quantize", "metal_plan", "metal_plan_dequantize",
           "metal_plan_quantize", "set_cpu_isa", "set_parallel_threshold"]

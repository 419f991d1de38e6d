# Declarations of the C++ core's public API (include/onebit/onebit.h).
# C-prefixed names keep them apart from the Python-level objects.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp cimport bool
from libcpp.string cimport string
from libcpp.vector cimport vector


cdef extern from "_errors.h":
    cdef void raise_py_error()


cdef extern from "onebit/onebit.h" namespace "onebit" nogil:
    cdef enum class CDType "onebit::DType":
        float32
        float16
        bfloat16
        uint32
        unsupported

    cdef enum class CMode "onebit::Mode":
        affine
        symmetric

    cdef enum class CWeightLayout "onebit::WeightLayout":
        mlx
        interleaved16

    cdef cppclass CArrayRef "onebit::ArrayRef":
        void* data
        CDType dtype
        vector[int64_t] shape
        string label

    cdef cppclass CQuantSpec "onebit::QuantSpec":
        int bits
        int group_size
        CMode mode

    cdef cppclass CQuantizePlan "onebit::QuantizePlan":
        vector[int64_t] wq_shape
        vector[int64_t] scales_shape
        bool has_biases

    cdef cppclass CDequantizePlan "onebit::DequantizePlan":
        CDType out_dtype
        vector[int64_t] out_shape

    cdef cppclass CMatmulPlan "onebit::MatmulPlan":
        CDType out_dtype
        vector[int64_t] out_shape

    CMode parse_mode(const string& name, const char* op) except +raise_py_error
    vector[int] supported_bits()
    vector[int] supported_group_sizes()

    CQuantizePlan plan_quantize(const CArrayRef& w, const CQuantSpec& spec) except +raise_py_error
    void quantize(const CQuantizePlan& plan, uint32_t* wq, void* scales,
                  void* biases) except +raise_py_error

    CDequantizePlan plan_dequantize(const CArrayRef& wq, const CArrayRef& scales,
                                    const CArrayRef* biases, const CQuantSpec& spec,
                                    const CDType* out_dtype) except +raise_py_error
    void dequantize(const CDequantizePlan& plan, void* out) except +raise_py_error

    CMatmulPlan plan_quantized_matmul(const CArrayRef& x, const CArrayRef& wq,
                                      const CArrayRef& scales, const CArrayRef* biases,
                                      bool transpose, const CQuantSpec& spec,
                                      CWeightLayout layout) except +raise_py_error
    void quantized_matmul(const CMatmulPlan& plan, void* out,
                          const string& backend) except +raise_py_error
    vector[string] backends()
    const char* layout_name(CWeightLayout layout)
    void interleave16(const CArrayRef& a, void* out) except +raise_py_error
    void deinterleave16(const CArrayRef& a, void* out) except +raise_py_error

    cdef cppclass CTraceEntry "onebit::TraceEntry":
        string backend
        string kernel
        uint32_t grid[3]
        uint32_t threadgroup[3]

    size_t trace_start()
    vector[CTraceEntry] trace_stop(size_t token)

    vector[string] cpu_kernels_compiled()
    vector[string] cpu_kernels_supported()
    string cpu_kernel_active() except +raise_py_error
    void set_cpu_kernel(const string& name) except +raise_py_error
    CWeightLayout cpu_preferred_layout(const CQuantSpec& spec) except +raise_py_error
    void set_num_threads(int n) except +raise_py_error
    int get_num_threads()
    uint64_t read_memory(const void* data, size_t nbytes) nogil
    void set_parallel_threshold "onebit::cpu::set_parallel_threshold"(int64_t work)
    void add_bias(void* y, CDType y_dtype, int64_t rows, int64_t n, const void* bias,
                  CDType bias_dtype) except +raise_py_error


# Metal backend counters (src/metal/host/stats.h; header only, so present in
# every build, all zero without Metal). The path is relative to _core.cpp.
cdef extern from "../src/metal/host/stats.h" namespace "onebit::metal" nogil:
    cdef cppclass CMetalFamily "onebit::metal::FamilyStatus":
        string source
        string origin
        string language
        bool ok
        string error

    cdef cppclass CMetalLibrary "onebit::metal::LibraryStatus":
        bool loaded
        string os
        string metallib_error
        bool nax_kernels
        bool bfloat_kernels
        vector[CMetalFamily] families

    cdef cppclass CMetalStats "onebit::metal::StatsSnapshot":
        bool built
        uint64_t wrapped
        uint64_t copied_inputs
        uint64_t copied_outputs
        uint64_t copied_misaligned
        CMetalLibrary library

    CMetalStats metal_stats_snapshot "onebit::metal::stats_snapshot"()
    bool metal_load_library "onebit::metal::load_library"() except +raise_py_error


# The Metal planner (src/metal/planner.h): pure C++, exposed for routing tests.
cdef extern from "<array>" namespace "std" nogil:
    cdef cppclass CDim3 "std::array<std::uint32_t, 3>":
        uint32_t& operator[](size_t)


cdef extern from "metal/planner.h" namespace "onebit::metal" nogil:
    cdef enum class CNaxPolicy "onebit::metal::NaxPolicy":
        pass

    CNaxPolicy nax_policy_from_env() except +raise_py_error

    cdef cppclass CDeviceCaps "onebit::metal::DeviceCaps":
        int simd_width
        int max_threads_per_threadgroup
        int64_t max_threadgroup_memory
        bool nax
        CNaxPolicy nax_policy
        bool nax_kernels
        bool bfloat_kernels

    cdef enum class COperand "onebit::metal::Operand":
        pass

    cdef cppclass CBinding "onebit::metal::Binding":
        int index
        COperand operand
        vector[uint8_t] bytes

    cdef cppclass CDispatch "onebit::metal::Dispatch":
        string kernel
        CDim3 threadgroups
        CDim3 threads
        vector[CBinding] buffers
        vector[int64_t] threadgroup_memory

    const char* operand_name(COperand operand)
    CDispatch plan_matmul(const CMatmulPlan& plan, const CDeviceCaps& caps) except +raise_py_error
    CDispatch metal_plan_quantize "onebit::metal::plan_quantize"(
        const CQuantizePlan& plan, const CDeviceCaps& caps) except +raise_py_error
    CDispatch metal_plan_dequantize "onebit::metal::plan_dequantize"(
        const CDequantizePlan& plan, const CDeviceCaps& caps) except +raise_py_error


# The CPU kernel choice (src/cpu/kernel_choice.h): pure C++, exposed for routing tests.
cdef extern from "cpu/kernel_choice.h" namespace "onebit::cpu" nogil:
    cdef enum class CCpuKernel "onebit::cpu::CpuKernel":
        pass

    cdef cppclass CCpuKernelChoice "onebit::cpu::CpuKernelChoice":
        CCpuKernel kernel
        bool slabs
        bool serial
        const char* why

    const char* cpu_kernel_name "onebit::cpu::kernel_name"(CCpuKernel kernel)
    CCpuKernelChoice plan_cpu_kernel(const CMatmulPlan& plan, const string& isa) except +raise_py_error


# quantize / dequantize with the Metal kernels on the emulator (tests only).
cdef extern from "metal/emulated_ops.h" namespace "onebit::metal" nogil:
    void emulated_quantize(const CQuantizePlan& plan, uint32_t* wq, void* scales,
                           void* biases) except +raise_py_error
    void emulated_dequantize(const CDequantizePlan& plan, void* out) except +raise_py_error


# Internal checks of the core (src/common/checks.h), for QuantizedLinear.
cdef extern from "common/checks.h" namespace "onebit" nogil:
    void check_spec(const CQuantSpec& spec, const char* op) except +raise_py_error
    CDequantizePlan plan_dequantize_for(const char* op, const CArrayRef& wq,
                                        const CArrayRef& scales, const CArrayRef* biases,
                                        const CQuantSpec& spec,
                                        const CDType* out_dtype) except +raise_py_error

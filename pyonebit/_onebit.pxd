# Declarations of the C++ core's public API (include/onebit/onebit.h).
# C-prefixed names keep them apart from the Python-level objects.
from libc.stdint cimport int64_t, uint32_t
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
                                      bool transpose, const CQuantSpec& spec) except +raise_py_error
    void quantized_matmul(const CMatmulPlan& plan, void* out,
                          const string& backend) except +raise_py_error
    vector[string] backends()

    vector[string] cpu_kernels_compiled()
    vector[string] cpu_kernels_supported()
    string cpu_kernel_active() except +raise_py_error
    void set_cpu_kernel(const string& name) except +raise_py_error
    void set_num_threads(int n) except +raise_py_error
    int get_num_threads()

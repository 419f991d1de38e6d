"""``import pyonebit`` leaves ml_dtypes (about 0.6 s to import on a 2-vCPU Zen 4, most
of pyonebit's import time) until bfloat16 is needed: pyonebit._bfloat16."""
import subprocess
import sys


def run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_import_leaves_ml_dtypes_unimported():
    assert run("import sys, pyonebit; print('ml_dtypes' in sys.modules)") == "False"


def test_bfloat16_by_name_works_without_importing_ml_dtypes_first():
    code = ("import sys, numpy as np, pyonebit\n"
            "wq, s, b = pyonebit.quantize(np.ones((16, 128), np.float32), 128, 1)\n"
            "print(pyonebit.dequantize(wq, s, b, dtype='bfloat16').dtype,\n"
            "      pyonebit.aligned_empty(4, 'bfloat16').dtype, 'ml_dtypes' in sys.modules)")
    assert run(code) == "bfloat16 bfloat16 True"


def test_bfloat16_arrays_after_ml_dtypes():
    code = ("import ml_dtypes, numpy as np, pyonebit\n"
            "w = np.ones((16, 128), ml_dtypes.bfloat16)\n"
            "wq, s, b = pyonebit.quantize(w, 128, 1)\n"
            "print(s.dtype, pyonebit.quantized_matmul(np.ones((1, 128), ml_dtypes.bfloat16), wq, s, b).dtype)")
    assert run(code) == "bfloat16 bfloat16"

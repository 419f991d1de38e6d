"""CPU quantized-matmul benchmark (pyonebit vs NumPy float32 and MLX).

    python benchmarks/bench_qmm.py --help
"""
import sys

from pyonebit.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())

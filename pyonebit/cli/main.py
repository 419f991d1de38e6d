"""python -m pyonebit: the demo job (default) and the other commands
(bench, convert, info). Bad input ends with one line "error: ..." on stderr
and exit code 2.

Commands (each has --help):
  demo     quantize a built-in 4096 x 4096 matrix to 1 bit and time it as a
           layer on every backend against NumPy (the default; 10-20 s)
  bench    time the seed's layer shapes at 1/2/4/8 bits (about 2 minutes);
           bench --cold: decode from DRAM against the memory bandwidth
  convert  quantize a float safetensors checkpoint into an MLX one or a GGUF
           file
  info     this installation; with a checkpoint (MLX directory or GGUF
           file), what pyonebit loads from it
"""
import sys

import pyonebit

from . import convert, demo, info
from .args import Formatter, Parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(argv)
    # Bad input, or an optional dependency missing (gguf for a .gguf file):
    # a message, not a traceback.
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(argv):
    if argv[:1] == ["bench"]:  # its own options: python -m pyonebit bench --help
        from . import bench

        return bench.main(argv[1:])
    args = build_parser().parse_args(argv)
    return {"convert": convert.run, "info": info.run}.get(args.command, demo.run)(args)


def build_parser():
    parser = Parser(prog="python -m pyonebit", description=__doc__, formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"pyonebit {pyonebit.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{demo,bench,convert,info}",
                                help="the command (default: demo)")
    d = sub.add_parser("demo", help="quantize a built-in matrix and time it as a layer (default)",
                       description=demo.__doc__, formatter_class=Formatter)
    sub.add_parser("bench", help="benchmark of the seed's layer shapes on every non-emulated "
                                 "backend (see bench --help)", add_help=False)
    c = sub.add_parser("convert", help="quantize a float safetensors checkpoint into an MLX one or a "
                            "GGUF file",
                       description=convert.DESCRIPTION, formatter_class=Formatter)
    convert.add_arguments(c)
    i = sub.add_parser("info", help="version, backends, CPU kernels, threads, Metal; "
                                    "with a checkpoint, what loads from it",
                       description=info.__doc__, formatter_class=Formatter)
    info.add_arguments(i)
    for p in (parser, d):  # no command runs the demo, so its options work without "demo"
        demo.add_arguments(p)
    return parser


if __name__ == "__main__":
    sys.exit(main())

"""python -m pyonebit convert IN OUT: the command's arguments and report; the
conversion and its rules are pyonebit.io.convert (whose docstring is the help)."""
from __future__ import annotations

import sys

from ..io import convert as _rules
from ..io.convert import convert_checkpoint, default_mode

DESCRIPTION = _rules.__doc__  # the conversion's rules, written where they are applied


def add_arguments(parser) -> None:
    parser.add_argument("input", metavar="IN",
                        help="float checkpoint: a directory or a .safetensors file")
    parser.add_argument("output", metavar="OUT",
                        help="new directory for the quantized checkpoint, or a new .gguf file")
    parser.add_argument("--bits", type=int, default=1, help="bits per weight (default 1)")
    parser.add_argument("--group-size", type=int, default=128,
                        help="weights per scale (default 128)")
    parser.add_argument("--mode", choices=["affine", "symmetric"], default=None,
                        help="affine (MLX's format; the default for a directory OUT) or "
                             "symmetric (1-bit without biases; MLX cannot load it; the default "
                             "and only choice for a .gguf OUT, stored as Q1_0)")


def run(args) -> int:
    args.mode = args.mode or default_mode(args.output)
    s = convert_checkpoint(args.input, args.output, bits=args.bits, group_size=args.group_size,
                           mode=args.mode, progress=sys.stderr.isatty())
    print(f"quantized {s.quantized} tensors to {args.bits} bit{'s' * (args.bits > 1)} "
          f"({args.mode}, group size {args.group_size}), kept {s.kept} unchanged")
    print(f"{s.bytes_before / 2**20:.2f} MiB -> {s.bytes_after / 2**20:.2f} MiB "
          f"({s.ratio:.2f}x smaller)")
    print(f"wrote {args.output}: {', '.join(s.files)}")
    if s.skipped:
        print(f"not copied (symlinks to files outside {args.input}): {', '.join(s.skipped)}",
              file=sys.stderr)
    return 0


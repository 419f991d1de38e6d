"""The gguf package (gguf-py, from llama.cpp), an optional dependency:
imported here first by every GGUF module, so its absence says what to install."""
from __future__ import annotations

_HINT = ("pyonebit's GGUF support (load_gguf, save_gguf, convert to .gguf, info on a .gguf file) "
         "needs the gguf package: pip install 'pyonebit[gguf]' (or 'gguf>=0.19.0')")

try:
    import gguf
except ImportError as exc:
    raise ImportError(_HINT) from exc

if not hasattr(gguf.GGMLQuantizationType, "Q1_0"):
    raise ImportError(f"{_HINT}; the installed gguf lacks the Q1_0 type")

__all__ = ["gguf"]

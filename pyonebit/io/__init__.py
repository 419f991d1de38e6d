"""File formats: MLX checkpoints (safetensors + config.json), GGUF files, and
the converter from float checkpoints. The public names (load_mlx, save_mlx,
load_gguf, save_gguf, ...) are re-exported by :mod:`pyonebit`."""

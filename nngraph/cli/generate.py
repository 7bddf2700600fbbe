"""`nngraph generate MODEL`: text from a character model's prompts, streamed as it is made.

The model file defines `prefill` and `decode_step` (see nngraph/generation.py and models/gpt.nn):
the prompt is read once, then each new character is one run of decode_step, which samples it in
the graph and adds its keys and values to the cache that this command carries from run to run;
so a character is printed as soon as it exists. One prompt streams character by character; with
several (`--prompt` repeated, one batch), each text is printed whole, under its prompt, when its
row ends. The same seed gives the same text on every backend and in the exported
`generate_cached` model (the whole loop as one graph).
"""
from __future__ import annotations

import sys

from nngraph.cli.common import (
    add_backend_arguments,
    backend_from,
    non_negative_float,
    non_negative_int,
    positive_int,
    unit_float,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generate text from prompts with a character model")
    parser.add_argument("model", metavar="MODEL", help="a .nn file with `prefill` and `decode_step` models")
    parser.add_argument("--params", required=True, metavar="PARAMS.npz", help="weights from `nngraph train`")
    parser.add_argument("--prompt", action="append", required=True, metavar="TEXT",
                        help="the text to continue; repeat for a batch of prompts")
    parser.add_argument("--max-new-tokens", type=positive_int, default=200, metavar="N",
                        help="characters to generate per prompt (default 200)")
    parser.add_argument("--temperature", type=non_negative_float, default=0.0, metavar="T",
                        help="0 (default) picks the most likely character; higher is more random")
    parser.add_argument("--top-k", type=non_negative_int, default=0, metavar="K",
                        help="sample among the K most likely characters only (0, default: all)")
    parser.add_argument("--top-p", type=unit_float, default=1.0, metavar="P",
                        help="sample among the most likely characters whose probabilities add up to P (default 1: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling's random numbers (default 0)")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end a prompt's text before this string (repeatable; e.g. --stop $'\\n')")
    add_backend_arguments(parser)
    parser.set_defaults(command=run)


def run(args) -> int:
    # The compiler is imported when a command runs: `nngraph --version` and `--help` do without it.
    from nngraph.files import load_weights
    from nngraph.generation import Generator, Sampling
    params, meta = load_weights(args.params)
    vocab = meta.get("vocab")                   # the characters, when the weights carry them
    generator = Generator(args.model, params, list(vocab) if isinstance(vocab, str) else None, backend_from(args))
    sampling = Sampling(args.temperature, args.top_k, args.top_p, args.seed)
    prompts, out = args.prompt, sys.stdout
    for prompt in prompts:
        generator.encode(prompt)                      # every prompt checked before anything is printed
    if len(prompts) == 1:
        out.write(prompts[0])
        for _, piece in generator.generate(prompts, args.max_new_tokens, sampling, tuple(args.stop)):
            out.write(piece)
            out.flush()
        out.write("\n")
        return 0
    shown = set()
    for r, _ in generator.generate(prompts, args.max_new_tokens, sampling, tuple(args.stop)):
        _show_finished(generator.rows, shown, out)
    _show_finished(generator.rows, shown, out, everything=True)
    return 0


def _show_finished(rows, shown: set, out, everything: bool = False) -> None:
    for r, row in enumerate(rows):
        if r not in shown and (row.done and not row.held or everything):
            shown.add(r)
            out.write(f"--- prompt {r + 1}\n{row.prompt}{row.text}\n")
            out.flush()

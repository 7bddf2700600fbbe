"""Text generation with a key/value cache, one token at a time, streamed as it comes.

A generating .nn file (models/gpt.nn is one) defines two models that share their weights:

    prefill      input prompt: [B, P] int            -> output scores: [B, V] (the next token's),
                                                        and one output per cache (any names)
    decode_step  inputs scores, uniform [B], temperature, top_k [] int, top_p, at [] int (the new
                 token's position), forced [B] int (-1: sample; else this token), and the caches
                 under the names prefill gives them
                                                     -> outputs char [B] (the token), next_scores,
                                                        and next_<cache> for every cache

The sampling happens inside decode_step's graph (the `sample_categorical` op); this module only
carries the caches from one call to the next, so each token can be shown as soon as it exists.
The same loop as one graph (a scan with the caches as carries) is the file's `generate_cached`
model, which exports to ONNX and gives the same tokens from the same seed: the uniform numbers are
np.random.default_rng(seed).random((steps, B)), one row per step.

Prompts of different lengths share one batch: the prefill reads the shortest length of them all,
and the longer prompts' remaining tokens are fed as `forced` tokens in the first steps. When the
cache is full (the model's positions run out), the last half of every row is read again by a
prefill and generation goes on (a "context shift"): text past the model's context length is then
conditioned on that half only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from nngraph.api import Model, load, model_names
from nngraph.diagnostics import NNError

STEP_INPUTS = ("scores", "uniform", "temperature", "top_k", "top_p", "at", "forced")


@dataclass
class Sampling:
    """How each token is picked: temperature 0 is greedy; top_k 0 and top_p 1 keep every token."""
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    def check(self) -> None:
        if self.temperature < 0:
            raise NNError(f"the temperature must be 0 (greedy) or more, got {self.temperature}")
        if self.top_k < 0:
            raise NNError(f"top-k must be 0 (every token) or more, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise NNError(f"top-p must be in (0, 1], got {self.top_p}")


@dataclass
class Row:
    """One prompt's text as it is generated: `text` so far, whether a stop string ended it."""
    prompt: str
    text: str = ""
    done: bool = False
    stopped: bool = False                           # a stop string ended it
    held: str = field(default="", repr=False)      # characters that may be the start of a stop string


class Generator:
    """The prefill and decode_step models of a generating .nn file, compiled once by `backend`."""

    def __init__(self, path: str, params: dict, vocab: list[str] | None = None, backend="numpy"):
        """`vocab`: the character of each id (default: those of the file's training data; `nngraph
        generate` passes the weights file's metadata `vocab`, a string, when it has one)."""
        self.prefill, self.step = _model(path, "prefill"), _model(path, "decode_step")
        self.params, self.vocab = params, vocab if vocab is not None else vocabulary(load(path))
        self.caches = [o for o in self.prefill.graph.outputs if o != "scores"]
        step_inputs = {v.name: v for v in self.step.graph.inputs}
        wanted = set(STEP_INPUTS) | set(self.caches)
        if "scores" not in self.prefill.graph.outputs or set(step_inputs) != wanted:
            raise NNError(f"{path}: `decode_step` must take {', '.join(sorted(wanted))} "
                          f"(its inputs: {', '.join(step_inputs)}); see nngraph/generation.py")
        self.max_len = step_inputs[self.caches[0]].type.shape[-2]
        self.run_prefill = self.prefill.inference(backend)
        self.run_step = self.step.inference(backend)

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self.vocab})
        if unknown:
            raise NNError(f"the prompt {text!r} has characters the model never saw: {unknown!r}",
                          hint=f"the model knows {''.join(c for c in self.vocab if c.isprintable())!r}")
        if not text:
            raise NNError("a prompt needs at least one character")
        return [self.vocab.index(c) for c in text]

    def tokens(self, prompts: list[list[int]], steps: int, sampling: Sampling) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(token ids [B], which of them are new [B] bool) for every step: the rest of the longer
        prompts is fed first (not new), while the other rows already generate."""
        sampling.check()
        prompts = [p[-(self.max_len - 1):] for p in prompts]          # at least one free position
        first = min(len(p) for p in prompts)
        seq = np.array([p[:first] for p in prompts], np.int64)
        rest = [p[first:] for p in prompts]
        extra = max(len(r) for r in rest)
        uniform = np.random.default_rng(sampling.seed).random((extra + steps, len(prompts))).astype(np.float32)
        settings = {"temperature": np.array(sampling.temperature, np.float32), "top_k": np.array(sampling.top_k, np.int64),
                    "top_p": np.array(sampling.top_p, np.float32)}
        state = self._prefill(seq)
        for i in range(extra + steps):
            if seq.shape[1] >= self.max_len:                 # the cache is full: keep the last half
                seq = seq[:, -(self.max_len // 2):]
                state = self._prefill(seq)
            forced = np.array([r[i] if i < len(r) else -1 for r in rest], np.int64)
            out = self.run_step(self.params, state | settings | {"uniform": uniform[i], "at": np.array(seq.shape[1], np.int64),
                                                                 "forced": forced})
            state = {"scores": out["next_scores"]} | {c: out[f"next_{c}"] for c in self.caches}
            seq = np.concatenate([seq, out["char"][:, None]], axis=1)
            yield out["char"], forced < 0

    def _prefill(self, seq: np.ndarray) -> dict:
        out = self.run_prefill(self.params, {"prompt": seq})
        return {"scores": out["scores"]} | {c: out[c] for c in self.caches}

    def generate(self, prompts: list[str], steps: int, sampling: Sampling,
                 stop: tuple[str, ...] = ()) -> Iterator[tuple[int, str]]:
        """(row, text) pieces as they become final, at most `steps` new characters a row; a row's
        text ends before its first stop string (characters that might begin one are held back
        until they cannot). The rows' whole texts are in `self.rows` afterwards."""
        ids = [self.encode(p) for p in prompts]
        self.rows = rows = [Row(p) for p in prompts]
        counts = [0] * len(rows)
        for chars, new in self.tokens(ids, steps, sampling) if steps > 0 else ():
            for r, row in enumerate(rows):
                if row.done or not new[r]:
                    continue
                piece = _advance(row, self.vocab[int(chars[r])], stop)
                counts[r] += 1
                row.done = row.done or counts[r] == steps
                if piece:
                    yield r, piece
            if all(row.done for row in rows):
                break
        for r, row in enumerate(rows):
            if row.held:                                      # the end came before a whole stop string
                row.text, piece, row.held = row.text + row.held, row.held, ""
                yield r, piece


def _advance(row: Row, char: str, stop: tuple[str, ...]) -> str:
    """Add one character to a row; return what can be shown now."""
    held = row.held + char
    for s in stop:
        if s and s in held:
            row.stopped = row.done = True
            piece = held[:held.index(s)]
            row.text += piece
            row.held = ""
            return piece
    keep = max((k for s in stop for k in range(1, min(len(s), len(held)) + 1) if held.endswith(s[:k])), default=0)
    piece, row.held = held[:len(held) - keep], held[len(held) - keep:]
    row.text += piece
    return piece


def _model(path: str, name: str) -> Model:
    if name not in model_names(path):
        raise NNError(f"{path} has no `{name}` model, which generation runs",
                      hint="a generating file defines `prefill` and `decode_step`: see models/gpt.nn")
    return load(path, name)


def vocabulary(model: Model) -> list[str]:
    """The characters of a character model: the `vocab` array (code points) of its training data."""
    config = model.train_config
    if config is None or config.data is None or config.data.kind != "npz":
        raise NNError(f"{model.path}: the model's training data is no .npz file, so its characters are unknown")
    try:
        with np.load(config.data.path, allow_pickle=False) as data:
            return [chr(int(c)) for c in data["vocab"]]
    except (OSError, KeyError, ValueError) as err:
        raise NNError(f"cannot read the characters (`vocab`) of {config.data.path}: {err}") from None

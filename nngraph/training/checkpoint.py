"""Checkpoints for exact resume: one .npz per checkpoint, written atomically, holding the
parameters (`param:NAME`), the optimizer state (`state:NAME`, Adam's moments and step counter
included) and, as JSON metadata (nngraph.files.save_weights, no pickle), the epoch, the shuffling
RNG's bit-generator state, the loss history and log, and early stopping's memory. Resuming from
the checkpoint of epoch 10 and training to 20 gives the parameters of 20 epochs in one run."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.files import load_weights, save_weights

PARAM, STATE, BEST = "param:", "state:", "best:"


@dataclass
class Checkpoint:
    path: str
    epoch: int
    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    rng: dict
    history: list[float] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)
    watch: dict | None = None
    best_params: dict[str, np.ndarray] = field(default_factory=dict)
    model: str | None = None

    def restore(self, params: dict, state: dict, rng: np.random.Generator) -> tuple[dict, dict, int]:
        """The checkpoint's parameters and optimizer state, checked against what this run expects
        (`params`, `state`: their names and shapes); sets `rng` to the checkpoint's state."""
        _same(self.params, params, "parameters", self.path)
        _same(self.state, state, "optimizer state", self.path,
              hint="was it written with another optimizer? resume with the train block it was trained with")
        rng.bit_generator.state = self.rng
        return dict(self.params), dict(self.state), self.epoch

    def restore_watch(self, watch) -> None:
        if self.watch:
            watch.best, watch.best_epoch = self.watch["best"], self.watch["best_epoch"]
            watch.best_params = dict(self.best_params) or None


def _same(stored: dict, expected: dict, what: str, path: str, hint: str | None = None) -> None:
    if set(stored) != set(expected):
        missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
        raise NNError(f"the checkpoint {path} does not fit this model's {what}: "
                      + "; ".join(([f"missing {', '.join(missing)}"] if missing else [])
                                  + ([f"unexpected {', '.join(extra)}"] if extra else [])), hint=hint)
    for name, array in expected.items():
        if np.shape(stored[name]) != np.shape(array):
            raise NNError(f"the checkpoint {path} holds `{name}` of shape {list(np.shape(stored[name]))}, "
                          f"but this model's is {list(np.shape(array))}")


class Checkpointer:
    """Writes DIR/epoch-NNNNN.npz every `every` epochs."""

    def __init__(self, folder: str, every: int, model: str):
        self.folder, self.every, self.model = folder, every, model

    def due(self, epoch: int, epochs: int) -> bool:
        return epoch % self.every == 0

    def save(self, epoch: int, params: dict, state: dict, rng: np.random.Generator, history: list[float],
             log: list[dict], watch=None) -> str:
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, f"epoch-{epoch:05d}.npz")
        arrays = {PARAM + k: v for k, v in params.items()} | {STATE + k: v for k, v in state.items()}
        meta = {"kind": "checkpoint", "model": self.model, "epoch": epoch, "rng": rng.bit_generator.state,
                "history": history, "log": log}
        if watch is not None and watch.best is not None:
            meta["watch"] = {"best": watch.best, "best_epoch": watch.best_epoch}
            arrays |= {BEST + k: v for k, v in (watch.best_params or {}).items()}
        save_weights(path, arrays, meta)
        return path


def latest(folder: str) -> str | None:
    found = sorted(glob.glob(os.path.join(folder, "epoch-*.npz")))
    return found[-1] if found else None


def load_checkpoint(path: str) -> Checkpoint:
    """A checkpoint file, or the newest one in a checkpoint folder."""
    if os.path.isdir(path):
        newest = latest(path)
        if newest is None:
            raise NNError(f"the folder {path} holds no checkpoint (epoch-NNNNN.npz)")
        path = newest
    arrays, meta = load_weights(path)
    if meta.get("kind") != "checkpoint" or not isinstance(meta.get("epoch"), int) or "rng" not in meta:
        raise NNError(f"{path} is not a checkpoint (written by `nngraph train --checkpoint DIR`)",
                      hint="a weights file from `-o` holds parameters only; training cannot resume from it exactly")

    def part(prefix):
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    return Checkpoint(path, meta["epoch"], part(PARAM), part(STATE), meta["rng"], meta.get("history", []),
                      meta.get("log", []), meta.get("watch"), part(BEST), meta.get("model"))

"""What a `train` block says, as plain data the language front end and the training loop share:
the data source, the optimizer and its settings, epochs, batch size, seed, held-out fraction."""
from __future__ import annotations

from dataclasses import dataclass, field

from nngraph.diagnostics import Span

OPTIMIZERS = {"sgd": ("lr", "momentum"), "adam": ("lr", "beta1", "beta2", "eps")}


@dataclass
class Optimizer:
    kind: str = "sgd"               # "sgd" (with optional momentum) or "adam"
    settings: dict = field(default_factory=dict)

    def get(self, key: str) -> float:
        defaults = {"lr": 0.01 if self.kind == "sgd" else 0.001, "momentum": 0.0,
                    "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
        return float(self.settings.get(key, defaults[key]))

    def slots(self) -> tuple[str, ...]:
        """Per-parameter state the optimizer keeps."""
        if self.kind == "adam":
            return ("m", "v")
        return ("velocity",) if self.get("momentum") else ()

    def __str__(self) -> str:
        args = ", ".join(f"{k} = {self.get(k):g}" for k in OPTIMIZERS[self.kind] if k in self.settings or k == "lr")
        return f"{self.kind}({args})"


@dataclass
class DataSource:
    kind: str                        # "csv", "npz" or "skipgram"
    path: str                        # resolved against the model file's folder
    columns: dict[str, list[str]] = field(default_factory=dict)   # input name -> CSV columns
    span: Span | None = None
    settings: dict[str, int] = field(default_factory=dict)        # skipgram: window, negatives


@dataclass
class TrainConfig:
    data: DataSource | None = None
    optimizer: Optimizer = field(default_factory=Optimizer)
    epochs: int = 100
    batch: int | None = None        # None: the whole training set in one batch (plain gradient descent)
    seed: int = 0
    holdout: float = 0.0            # fraction of rows kept out of training to measure generalization

"""What a `train` block says, as plain data the language front end and the training loop share:
the data source, the optimizer and its settings, epochs, batch size, seed, held-out fraction."""
from __future__ import annotations

from dataclasses import dataclass, field

from nngraph.diagnostics import Span

OPTIMIZERS = {"sgd": ("lr", "momentum"), "adam": ("lr", "beta1", "beta2", "eps"),
              "adamw": ("lr", "beta1", "beta2", "eps", "weight_decay")}
# learning-rate schedules (nngraph/training/schedules.py) and their settings; each also takes `warmup`
SCHEDULES = {"constant": (), "step": ("every", "gamma"), "cosine": ("steps", "min_lr"), "linear": ("steps", "min_lr")}


@dataclass
class Schedule:
    """`schedule = cosine(warmup = 100)`: the learning rate as a function of the step counter,
    a linear warm-up over `warmup` steps then a decay (step: times `gamma` every `every` steps;
    cosine/linear: to `min_lr` over `steps` steps, None = the whole run)."""
    kind: str = "constant"
    warmup: int = 0
    every: int = 1
    gamma: float = 0.1
    steps: int | None = None
    min_lr: float = 0.0


@dataclass
class Optimizer:
    kind: str = "sgd"               # "sgd" (with optional momentum), "adam" or "adamw" (decoupled weight decay)
    settings: dict = field(default_factory=dict)
    schedule: Schedule | None = None   # None: a constant learning rate
    clip_norm: float | None = None     # scale the gradients so that their global norm is at most this

    def get(self, key: str) -> float:
        defaults = {"lr": 0.01 if self.kind == "sgd" else 0.001, "momentum": 0.0,
                    "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
        return float(self.settings.get(key, defaults[key]))

    def slots(self) -> tuple[str, ...]:
        """Per-parameter state the optimizer keeps."""
        if self.kind in ("adam", "adamw"):
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
    metrics: list[str] | None = None    # `metrics = [accuracy, ...]` (nngraph.training.metrics); None: the defaults
    ignore_label: int | None = None     # a label id (e.g. <PAD>) that accuracy and the per-class table skip
    early_stopping: EarlyStopping | None = None
    metrics_span: Span | None = None    # where `metrics = [...]` is written, for diagnostics


@dataclass
class EarlyStopping:
    """`early_stopping = monitor(accuracy, patience = 5)`: stop when the held-out metric has not
    improved for `patience` epochs, and keep the parameters of its best epoch."""
    metric: str = "loss"
    patience: int = 5
    span: Span | None = None

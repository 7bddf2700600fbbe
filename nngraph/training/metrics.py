"""What a trained model is measured by, besides its loss: the metrics a train block names
(`metrics = [accuracy, ...]`), computed from the outputs of the model on some data.

A classifier is a model with an integer output shaped like an integer target (`species` and
`label`): its predicted and true labels. Label positions equal to the train block's
`ignore_label` (the <PAD> of a sequence model, say) count nowhere: not in accuracy, not in the
per-class table. Perplexity and bits per character read the loss, which for a language model is
the mean cross entropy in nats per token.
"""
from __future__ import annotations

import math

import numpy as np

from nngraph.diagnostics import NNError, Span, did_you_mean
from nngraph.ir.graph import Graph

METRICS = {
    "accuracy": "the fraction of labels predicted right (ignored labels skipped)",
    "sequence_accuracy": "the fraction of rows whose every (not ignored) label is right",
    "perplexity": "exp(loss): for a mean cross entropy in nats, the effective number of choices per token",
    "bits_per_char": "loss / ln 2: a mean cross entropy in bits",
}
NEEDS_LABELS = {"accuracy", "sequence_accuracy"}
HIGHER_IS_BETTER = {"accuracy", "sequence_accuracy"}       # loss, perplexity, bits: lower is better


def label_pair(graph: Graph) -> tuple[str, str] | None:
    """A classifier's (predicted-label output, true-label target): both integer, same shape."""
    targets = [v for v in graph.inputs if v.name in graph.targets and v.dtype.startswith("int")]
    for name, out in graph.outputs.items():
        for t in targets:
            if out.dtype.startswith("int") and out.shape == t.shape:
                return name, t.name
    return None


def chosen(names: list[str] | None, graph: Graph) -> list[str]:
    """The metrics to report: those named, else accuracy for a classifier, else none."""
    if names is not None:
        return list(names)
    return ["accuracy"] if label_pair(graph) else []


def check(names: list[str], graph: Graph, span: Span | None = None) -> None:
    """Every named metric exists and the model has what it reads."""
    for name in names:
        if name not in METRICS:
            raise NNError(f"unknown metric `{name}`", span, hint=did_you_mean(name, METRICS)
                          or f"metrics: {', '.join(METRICS)}")
        if name in NEEDS_LABELS and label_pair(graph) is None:
            raise NNError(f"metric `{name}` needs a predicted label: an integer output shaped like an integer target",
                          span, hint="e.g. `output label_pred = argmax(scores, axis = -1)` for `target label: [N] int`")
        if name == "sequence_accuracy" and graph.outputs[label_pair(graph)[0]].type.rank < 2:
            raise NNError("metric `sequence_accuracy` needs labels shaped [N, T] (one row per sequence)", span)


def compute(names: list[str], graph: Graph, outputs: dict, arrays: dict, loss: float | None,
            ignore_label: int | None = None) -> dict[str, float]:
    """{metric: value} from the model's `outputs` on data `arrays` (which hold the targets)."""
    values = {}
    pair = label_pair(graph)
    for name in names:
        if name == "perplexity":
            values[name] = math.exp(min(loss, 700.0))
        elif name == "bits_per_char":
            values[name] = loss / math.log(2)
        elif name in NEEDS_LABELS and pair:
            pred, true = np.asarray(outputs[pair[0]]), np.asarray(arrays[pair[1]])
            values[name] = (accuracy if name == "accuracy" else sequence_accuracy)(pred, true, ignore_label)
    return values


def _counted(true: np.ndarray, ignore_label: int | None) -> np.ndarray:
    return np.ones(true.shape, bool) if ignore_label is None else true != ignore_label


def accuracy(pred: np.ndarray, true: np.ndarray, ignore_label: int | None = None) -> float:
    counted = _counted(true, ignore_label)
    return float(np.mean(pred[counted] == true[counted])) if counted.any() else float("nan")


def sequence_accuracy(pred: np.ndarray, true: np.ndarray, ignore_label: int | None = None) -> float:
    right = (pred == true) | ~_counted(true, ignore_label)
    return float(np.mean(right.reshape(len(right), -1).all(axis=1)))


def per_class(pred: np.ndarray, true: np.ndarray, names: list[str] | None = None,
              ignore_label: int | None = None) -> list[dict]:
    """Precision, recall, F1 and support of every class (a class never predicted has precision 0)."""
    counted = _counted(true, ignore_label)
    pred, true = pred[counted].ravel(), true[counted].ravel()
    classes = max(len(names or []), int(pred.max(initial=-1)) + 1, int(true.max(initial=-1)) + 1)
    rows = []
    for k in range(classes):
        if k == ignore_label:
            continue
        tp = int(np.sum((pred == k) & (true == k)))
        predicted, actual = int(np.sum(pred == k)), int(np.sum(true == k))
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        name = names[k] if names and k < len(names) else str(k)
        rows.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": actual})
    return rows


def format_table(rows: list[dict]) -> str:
    width = max([5] + [len(r["class"]) for r in rows])
    lines = [f"{'class':<{width}}  precision  recall      f1  support"]
    for r in rows:
        lines.append(f"{r['class']:<{width}}  {r['precision']:>9.2%}  {r['recall']:>6.1%}  {r['f1']:>6.3f}  {r['support']:>7}")
    return "\n".join(lines)


def format_values(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2%}" if k in HIGHER_IS_BETTER else f"{k} {v:.4g}" for k, v in values.items())

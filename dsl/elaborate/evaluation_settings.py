"""The train block's evaluation settings: `metrics = [accuracy, perplexity]`, `ignore_label = 0`
(a label id such as <PAD> that metrics skip) and `early_stopping = monitor(accuracy, patience = 5)`
(stop when the held-out metric has not improved for `patience` epochs)."""
from __future__ import annotations

from nngraph.diagnostics import NNError, did_you_mean
from nngraph.dsl import ast
from nngraph.training.config import EarlyStopping, TrainConfig
from nngraph.training.metrics import METRICS

EVALUATION_SETTINGS = ("metrics", "ignore_label", "early_stopping")


def evaluation_setting(config: TrainConfig, key: str, e: ast.Expr) -> None:
    if key == "metrics":
        config.metrics, config.metrics_span = metric_names(e), e.span
    elif key == "ignore_label":
        config.ignore_label = _int(e, "ignore_label", "the label id that metrics skip, e.g. `ignore_label = 0`")
    else:
        config.early_stopping = early_stopping(e)


def metric_names(e: ast.Expr) -> list[str]:
    items = e.items if isinstance(e, ast.ListExpr) else [e]
    names = []
    for item in items:
        if not isinstance(item, ast.Name):
            raise NNError("`metrics` is a list of metric names, e.g. `metrics = [accuracy, perplexity]`", item.span,
                          hint=f"metrics: {', '.join(METRICS)}")
        _check_metric(item)
        names.append(item.id)
    return names


def early_stopping(e: ast.Expr) -> EarlyStopping:
    usage = "e.g. `early_stopping = monitor(accuracy, patience = 5)`: the held-out metric and how many epochs " \
            "without improvement to wait"
    if not isinstance(e, ast.Call) or not isinstance(e.func, ast.Name) or e.func.id != "monitor" \
            or len(e.args) != 1 or not isinstance(e.args[0], ast.Name):
        raise NNError("`early_stopping` takes monitor(METRIC, patience = N)", e.span, hint=usage)
    metric = e.args[0]
    if metric.id != "loss":
        _check_metric(metric)
    rule = EarlyStopping(metric.id, 5, e.span)
    for kw in e.kwargs:
        if kw.name != "patience":
            raise NNError(f"monitor(...) has no setting `{kw.name}`", kw.span,
                          hint=did_you_mean(kw.name, ["patience"]) or usage)
        rule.patience = _int(kw.value, "patience", "the number of epochs without improvement to wait", least=1)
    return rule


def _check_metric(name: ast.Name) -> None:
    if name.id not in METRICS:
        raise NNError(f"unknown metric `{name.id}`", name.span,
                      hint=did_you_mean(name.id, METRICS) or f"metrics: {', '.join(METRICS)}")


def _int(e: ast.Expr, key: str, meaning: str, least: int = 0) -> int:
    value = e.value if isinstance(e, ast.Number) and e.is_int else None
    if value is None or value < least:
        raise NNError(f"`{key}` must be an integer{' >= ' + str(least) if least else ''}: {meaning}", e.span)
    return int(value)

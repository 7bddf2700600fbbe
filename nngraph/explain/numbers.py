"""Numbers for an explained derivative: every value of the gradient graph computed once with the
NumPy backend (the reference semantics) on one data row or the whole batch, each factor of each
formula looked up or evaluated, then the gradient-descent step as it is taught:
step size = derivative × learning rate, new value = old value − step size.
"""
from __future__ import annotations

import numpy as np

from nngraph import runtime
from nngraph.api import Model, check_params
from nngraph.diagnostics import NNError
from nngraph.explain.derive import Derivation, Explainer
from nngraph.explain.expr import evaluate
from nngraph.explain.render import render

DEFAULT_LR = 0.01


def feeds_for(model: Model, row: int | None) -> dict[str, np.ndarray]:
    """The training data's inputs and targets: one row (`row`), or every row."""
    declared = {v.name: v.dtype for v in model.graph.inputs}
    data = model.load_data()
    if row is None:
        return _as_declared(data.arrays, declared)
    if not 0 <= row < data.size:
        raise NNError(f"--row {row} is outside the data, which has rows 0 to {data.size - 1}",
                      model.train_config.data.span if model.train_config and model.train_config.data else None,
                      hint=f"choose a row between 0 and {data.size - 1}, or leave --row out for the whole batch")
    return _as_declared(data.take([row]).arrays, declared)


def _as_declared(arrays: dict, declared: dict) -> dict[str, np.ndarray]:
    """The data in the model's dtypes (a model loaded in float64 reads float32 files)."""
    return {k: np.asarray(a).astype(declared[k], copy=False) if k in declared else a for k, a in arrays.items()}


def all_values(explainer: Explainer, params: dict, feeds: dict) -> dict[int, np.ndarray]:
    """value uid -> array for every top-level value of the gradient graph."""
    g = explainer.graph
    saved = dict(g.outputs)
    values = g.inputs + g.params + [v for n in g.nodes for v in n.outputs]
    try:
        g.outputs = saved | {f"__value{v.uid}": v for v in values}
        out = runtime.get("numpy").compile(g)({k: feeds[k] for k in (v.name for v in g.inputs)}, params)
    finally:
        g.outputs = saved
    return {v.uid: out[f"__value{v.uid}"] for v in values}


def learning_rate(model: Model) -> tuple[float, str]:
    optimizer = model.train_config.optimizer if model.train_config else None
    if optimizer is None:
        return DEFAULT_LR, "sgd"
    return float(optimizer.settings.get("lr", DEFAULT_LR)), optimizer.kind


def numbers_text(model: Model, explainer: Explainer, derivation: Derivation, env: dict, where: str) -> list[str]:
    lines = [f"  with the numbers ({where}):"]
    for eq in derivation.equations:
        cache: dict = {}
        lines.append(f"    ∂{derivation.loss}/∂{eq.name} = {fmt(evaluate(eq.expr, env, cache))}")
        shown = set()
        for x in _factors(eq.expr):
            label = render(x)
            if label in shown or x.op == "const":
                continue
            shown.add(label)
            lines.append(f"      {label} = {fmt(evaluate(x, env, cache))}")
    lr, kind = learning_rate(model)
    param = next(p for p in explainer.graph.params if p.name == derivation.param)
    old, grad = env[param.uid], np.broadcast_to(evaluate(derivation.equations[0].expr, env), param.shape)
    step = grad * lr
    lines += [f"  gradient descent, learning rate {lr:g}"
              + ("" if kind == "sgd" else f" (the train block uses {kind}, whose step also rescales it)") + ":",
              f"    step size = derivative × learning rate = {fmt(grad)} × {lr:g} = {fmt(step)}",
              f"    new {derivation.param} = old − step size = {fmt(old)} − {fmt(step)} = {fmt(old - step)}"]
    return lines


def _factors(expr):
    """The operands of the top-level products and sums: the factors a reader checks one by one."""
    while expr.op in ("sum", "mean", "reshape_like", "broadcast_like", "neg") and expr.args:
        expr = expr.args[0]
    if expr.op in ("mul", "matmul", "div", "add", "sub"):
        for a in expr.args:
            yield from (_factors(a) if a.op == expr.op else [a])
    elif expr.op not in ("leaf", "grad", "const"):
        yield from expr.args


def fmt(array) -> str:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 0:
        return f"{float(array):.6g}"
    return np.array2string(array, precision=4, suppress_small=True, threshold=12, edgeitems=2,
                           max_line_width=10_000).replace("\n", "")


def load_params(model: Model, path: str | None) -> dict:
    from nngraph.files import load_npz
    return model.init() if path is None else check_params(model.graph, load_npz(path))

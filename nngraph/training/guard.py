"""The non-finite guard: when an epoch's loss or parameters hold a NaN or infinity, replay that
epoch from its last good parameters with the NumPy reference runtime in check mode, node by node,
and name the first node (and its .nn line) that produced a non-finite number. The caller raises
the diagnostic, so nothing is written after it: good weights are never overwritten."""
from __future__ import annotations

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Graph
from nngraph.runtime.numpy import BACKEND, NonFinite
from nngraph.training.data import Dataset
from nngraph.training.step import new_name


def all_finite(values) -> bool:
    return all(bool(np.isfinite(np.asarray(v)).all()) for v in values)


def locate_non_finite(model: Graph, step_graph: Graph, params: dict, state: dict, train_set: Dataset,
                      rng_state: dict, batch: int, epoch: int) -> NNError:
    """The diagnostic for a non-finite epoch, replayed from `params`/`state` with the shuffling
    RNG at `rng_state` (as the epoch began)."""
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    order = rng.permutation(train_set.size)
    plan = BACKEND.compile(step_graph, check_finite=True)
    hint = "a smaller learning rate (--lr), gradient clipping, or checking the data for extreme values"
    for number, start in enumerate(range(0, train_set.size, batch), 1):
        rows = order[start:start + batch]
        try:
            with np.errstate(all="ignore"):
                out = plan.run({k: v[rows] for k, v in train_set.arrays.items()} | state, params)
        except NonFinite as found:
            node = found.node
            where = {"forward": "the model", "backward": "the gradient of"}.get(node.role, "the optimizer update at")
            scope = f" (layer `{node.scope}`)" if node.scope else ""
            call = node.span.call_site if node.span is not None else None
            return NNError(f"training stopped: {found.kind} in epoch {epoch + 1}, step {number}: the first non-finite "
                           f"value comes from `{node.op}`{scope}, in {where} this line", node.span or _loss_span(model),
                           hint=hint, notes=[("the layer is used here", call)] if call is not None else None)
        params = {p: out[new_name(p)] for p in params}
        state = {s: out[new_name(s)] for s in state}
    return NNError(f"training stopped: a non-finite loss or parameter in epoch {epoch + 1} (the NumPy reference runtime "
                   "did not reproduce it step by step)", _loss_span(model), hint=hint)


def _loss_span(model: Graph):
    loss = model.outputs.get(model.loss) if model.loss else None
    return next((n.span for n in model.nodes if loss is not None and loss in n.outputs), None)

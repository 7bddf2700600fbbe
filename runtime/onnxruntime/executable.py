"""The onnxruntime executable: a graph exported to ONNX with its parameters as plain inputs, one
session on it, feeds checked like on every backend; and onnxruntime's errors as NNErrors at the
.nn line of the op they name."""
from __future__ import annotations

import os
import re

import numpy as np
import onnx
import onnxruntime as ort

from nngraph.diagnostics import NNError, did_you_mean
from nngraph.ir.graph import Graph, Node
from nngraph.onnx.export import ROLE_PREFIX, to_onnx
from nngraph.runtime.feeds import bindings_text, check_input
from nngraph.runtime.onnxruntime.loop import StepLoop


def export_for_session(graph: Graph) -> onnx.ModelProto:
    """`graph` as ONNX whose parameters are graph inputs without a default: they are fed on
    every call. The exporter wants a value per parameter, so it gets zeros, then they are dropped."""
    placeholders = {p.name: np.zeros([d if isinstance(d, int) else 1 for d in p.shape], p.dtype)
                    for p in graph.params}
    model = to_onnx(graph, placeholders, params_as_inputs=True,
                    doc_string=f"{graph.name} for the onnxruntime backend")
    params = set(placeholders)
    kept = [t for t in model.graph.initializer if t.name not in params]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def create_session(graph: Graph, model: onnx.ModelProto, options, providers) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=providers)
    except Exception as err:          # onnxruntime's errors share no base class but Exception
        raise ort_error(err, graph, model, "onnxruntime cannot run {what}",
                        hint="run this model with --backend numpy") from None


class OrtExecutable:
    """`executable(feeds, params=None, outputs=None) -> {output name: array}`; `loop(params,
    state)` runs a training-step graph with its carried values kept inside onnxruntime.
    `session` and `model` (the exported ModelProto) are there for benchmarks and debugging."""

    def __init__(self, graph: Graph, model: onnx.ModelProto, session: ort.InferenceSession, options=None):
        self.graph, self.model, self.session, self.options = graph, model, session, options
        self.dtypes = {name: np.dtype(v.dtype) for name, v in graph.outputs.items()}
        self._all = list(graph.outputs)
        # (name, dtype, shape, all dims ints, is a parameter) for the fast path of `feeds`
        self._specs = [(v.name, np.dtype(v.dtype), tuple(v.shape), all(isinstance(d, int) for d in v.shape), param)
                       for v, param in [(v, False) for v in graph.inputs] + [(v, True) for v in graph.params]]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def __call__(self, feeds: dict[str, np.ndarray], params: dict[str, np.ndarray] | None = None,
                 outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        ort_feeds, bindings = self.feeds(feeds, params or {})
        names = self._all if outputs is None else self.output_names(outputs)
        try:
            results = self.session.run(names, ort_feeds)
        except Exception as err:
            raise self.error(err, bindings) from None
        dtypes = self.dtypes
        return {name: _as(array, dtypes[name]) for name, array in zip(names, results)}

    run = __call__

    def feeds(self, feeds: dict, params: dict) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Every input and parameter checked (nngraph.runtime.feeds.check_input), and the symbol
        bindings. Arrays that already have their exact dtype and a fitting shape pass a quick
        test; anything else (a cast to make, an error to report) goes through check_input, so
        errors are the NumPy backend's."""
        checked, symbols = {}, {}
        for name, dtype, shape, static, param in self._specs:
            array = (params if param else feeds).get(name)
            if array.__class__ is not np.ndarray or array.dtype != dtype:
                break
            if static:
                if array.shape != shape:
                    break
            elif len(array.shape) != len(shape) or not all(
                    want == got if want.__class__ is int else symbols.setdefault(want, got) == got
                    for want, got in zip(shape, array.shape)):
                break
            checked[name] = array
        else:
            return checked, symbols
        bindings: dict[str, int] = {}
        checked = {v.name: check_input(v, feeds, bindings, "input") for v in self.graph.inputs}
        for v in self.graph.params:
            checked[v.name] = check_input(v, params, bindings, "parameter")
        return checked, bindings

    def bind(self, params: dict[str, np.ndarray]) -> BoundExecutable:
        """This graph with `params` fixed as ONNX initializers, in a session of its own: what
        running an exported model directly gives, where onnxruntime folds and pre-packs the
        weights (1.5x faster on a small CNN than feeding them). The arrays are copied into the
        model: changing them afterwards changes nothing. `bound(feeds, outputs=None)`."""
        bindings: dict[str, int] = {}
        values = {v.name: check_input(v, params, bindings, "parameter") for v in self.graph.params}
        model = to_onnx(self.graph, values, doc_string=f"{self.graph.name} with its weights, for the onnxruntime backend")
        session = create_session(self.graph, model, self.options, self.session.get_providers())
        return BoundExecutable(self, model, session)

    def loop(self, params: dict[str, np.ndarray], state: dict[str, np.ndarray] | None = None) -> StepLoop:
        """A StepLoop (loop.py) over this training-step graph, starting from `params` and
        optimizer `state`."""
        return StepLoop(self, params, state or {})

    def output_names(self, outputs: list[str]) -> list[str]:
        for name in outputs:
            if name not in self.graph.outputs:
                raise NNError(f"graph `{self.graph.name}` has no output `{name}`",
                              hint=did_you_mean(name, self.graph.outputs) or f"its outputs: {', '.join(self._all)}")
        return list(outputs)

    def error(self, err: Exception, bindings: dict[str, int]) -> NNError:
        """An error onnxruntime raised while running, as an NNError at the op's line."""
        return ort_error(err, self.graph, self.model, "{what} failed in onnxruntime (" + bindings_text(bindings) + ")")


class BoundExecutable:
    """An OrtExecutable's graph with its parameters built in (OrtExecutable.bind)."""

    def __init__(self, unbound: OrtExecutable, model: onnx.ModelProto, session: ort.InferenceSession):
        self.graph, self.model, self.session, self._unbound = unbound.graph, model, session, unbound

    def __call__(self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        bindings: dict[str, int] = {}
        checked = {v.name: check_input(v, feeds, bindings, "input") for v in self.graph.inputs}
        names = self._unbound._all if outputs is None else self._unbound.output_names(outputs)
        try:
            results = self.session.run(names, checked)
        except Exception as err:
            raise ort_error(err, self.graph, self.model,
                            "{what} failed in onnxruntime (" + bindings_text(bindings) + ")") from None
        return {name: _as(array, self._unbound.dtypes[name]) for name, array in zip(names, results)}


def _as(array, dtype: np.dtype) -> np.ndarray:
    return array if getattr(array, "dtype", None) == dtype else np.asarray(array).astype(dtype)


# ---------------------------------------------------------------- errors
_PREFIX = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*[A-Z_]+\s*:\s*")


def ort_error(err: Exception, graph: Graph, model: onnx.ModelProto, template: str, hint: str | None = None) -> NNError:
    """`err` as an NNError: `template` with {what} the IR op (or "the graph") and onnxruntime's
    message after it; the span is the .nn line of the ONNX node the message names."""
    message = _PREFIX.sub("", str(err).strip())
    node = culprit(message, graph, model)
    what = f"`{node.op}`" if node is not None else "the graph"
    return NNError(f"{template.format(what=what)}: {message}", node.span if node is not None else None, hint=hint)


def culprit(message: str, graph: Graph, model: onnx.ModelProto) -> Node | None:
    """The IR node behind the ONNX node that `message` names: ONNX nodes carry their IR node's
    source line as doc_string ("file.nn:12: ...") and its role and layer path in their name."""
    onnx_nodes = {n.name: n for n in _onnx_nodes(model.graph) if n.name}
    named = [name for name in onnx_nodes if re.search(rf"(?<![\w/]){re.escape(name)}(?![\w/])", message)]
    if not named:
        return None
    onnx_node = onnx_nodes[max(named, key=len)]
    where = re.match(r"^(.*?):(\d+):", onnx_node.doc_string or "")
    if where is None:
        return None
    file, line = where.group(1), int(where.group(2))
    candidates = [n for n in _ir_nodes(graph)
                  if n.span is not None and n.span.line == line and os.path.basename(n.span.file) == file]
    for node in candidates:
        prefix = ROLE_PREFIX.get(node.role, node.role + "/") + "".join(p + "/" for p in node.scope.split(".") if p)
        if onnx_node.name.startswith(prefix) and (prefix or "/" not in onnx_node.name):
            return node
    return candidates[0] if candidates else None


def _onnx_nodes(g: onnx.GraphProto):
    for node in g.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _onnx_nodes(attr.g)


def _ir_nodes(graph: Graph):
    for node in graph.nodes:
        yield node
        for attr in node.attrs.values():
            if isinstance(attr, Graph):
                yield from _ir_nodes(attr)

"""The Python API, mirroring the CLI: load a model file, check, compile, init, train, run.

    model = nngraph.load("models/squiggle.nn")
    result = model.train(seed=0)
    outputs = model.run(result.params, {"dose": [[0.0], [0.5], [1.0]]})
"""
from __future__ import annotations

import os

import numpy as np

from nngraph import autodiff, runtime
from nngraph.diagnostics import NNError, did_you_mean
from nngraph.dsl.elaborate import Elaborator
from nngraph.dsl.loader import load_program
from nngraph.ir import Graph
from nngraph.passes import optimize, optimize_before_grad
from nngraph.training import data as datasets
from nngraph.training.config import Optimizer, TrainConfig
from nngraph.training.loop import TrainResult, fit
from nngraph.training.params import init_params
from nngraph.training.step import initial_state, new_name, train_step_graph


class Model:
    def __init__(self, path: str, graph: Graph, train_config: TrainConfig | None):
        self.path, self.graph, self.train_config = path, graph, train_config
        self._compiled: dict[tuple, object] = {}

    @property
    def name(self) -> str:
        return self.graph.name

    # ---- graphs ----
    def inference_graph(self) -> Graph:
        """The model without its loss: what `run` executes and what ships."""
        return inference_part(self.graph)

    def grad_graph(self, of: str | None = None, wrt: list[str] | None = None) -> Graph:
        """d(loss)/d(param) outputs; `of` names another scalar output to differentiate (an imported
        ONNX model has no loss), `wrt` the parameters or inputs (default: every parameter)."""
        if of is None:
            self._require_loss()
            return autodiff.grad(self.graph, wrt=wrt)
        if of not in self.graph.outputs:
            raise NNError(f"model `{self.name}` has no output `{of}` to differentiate",
                          hint=did_you_mean(of, self.graph.outputs) or f"its outputs: {', '.join(self.graph.outputs)}")
        try:
            return autodiff.grad(self.graph, of=of, wrt=wrt)
        except ValueError as err:     # not a float scalar, or an unknown name in wrt
            raise NNError(f"cannot differentiate `{of}`: {err}") from None

    def compile(self, grad: bool = False, opt_level: int = 1, stats: list | None = None,
                observe=None) -> Graph:
        """The optimized inference graph, or with `grad` the loss and d(loss)/d(param) outputs.
        `stats` and `observe` are passed to the pass pipeline (see nngraph.passes.optimize)."""
        if grad:
            self._require_loss()
        model, _ = self.graph.clone()
        model = optimize_before_grad(model, opt_level, stats, observe)
        graph = autodiff.grad(model) if grad else inference_part(model)
        if stats is not None:
            stats.append(("elaborate" + (" + grad" if grad else ""), 0, len(graph.nodes), 0.0))
        return optimize(graph, opt_level, stats, observe)

    def _require_loss(self) -> None:
        if self.graph.loss is None:
            onnx = self.path.lower().endswith(".onnx")
            raise NNError(f"model `{self.name}` has no loss to differentiate", self.graph_span(),
                          hint="an imported ONNX model has none: differentiate a scalar output with "
                               "`Model.grad_graph(of=NAME)`" if onnx else "add `loss = ...` to the model")

    def graph_span(self):
        return next((v.span for v in self.graph.inputs if v.span), None)

    # ---- numbers ----
    def init(self, seed: int = 0) -> dict[str, np.ndarray]:
        return init_params(self.graph, seed)

    def load_data(self, config: TrainConfig | None = None) -> datasets.Dataset:
        config = config or self.train_config
        if config is None or config.data is None:
            raise NNError(f"model `{self.name}` has no `train {self.name} {{ data = ... }}` block naming its data",
                          self.graph_span(), hint="add one, or (for `nngraph run`) give each input as "
                          f"--input NAME=FILE.npy: {', '.join(v.name for v in self.graph.inputs)}")
        return datasets.load(config.data, self.graph, config.seed)

    def train(self, params=None, *, epochs: int | None = None, lr: float | None = None, batch: int | None = None,
              seed: int | None = None, data: datasets.Dataset | None = None, progress: bool | None = None,
              backend: str | runtime.Backend = "numpy") -> TrainResult:
        """Train from the `train` block's settings; keyword arguments override them. `backend` is
        the runtime that executes the training step: a name (see nngraph.runtime) or a backend
        made with options, e.g. ``nngraph.runtime.get("jax", devices=4)``."""
        if self.graph.loss is None:
            raise NNError(f"model `{self.name}` has no loss to train", self.graph_span(), hint="add `loss = ...`")
        base = self.train_config or TrainConfig()
        optimizer = Optimizer(base.optimizer.kind, dict(base.optimizer.settings) | ({"lr": lr} if lr else {}))
        config = TrainConfig(base.data, optimizer, epochs or base.epochs, batch or base.batch,
                             base.seed if seed is None else seed, base.holdout)
        data = data or self.load_data(config)
        params = self.init(config.seed) if params is None else check_params(self.graph, params)
        return fit(self.graph, params, data, config, backend_of(backend), progress)

    def run(self, params: dict | None = None, inputs: dict | None = None, outputs: list[str] | None = None,
            backend: str | runtime.Backend = "numpy") -> dict:
        """Outputs of the inference graph. Inputs default to the training data's inputs."""
        params = self.init() if params is None else check_params(self.graph, params)
        if inputs is None:
            inputs = {k: v for k, v in self.load_data().arrays.items() if k not in self.graph.targets}
        return self.inference(backend)(params, inputs, outputs)

    # ---- compiled functions, for programs and benchmarks ----
    def inference(self, backend: str | runtime.Backend = "numpy", opt_level: int = 1):
        """The inference graph compiled once by `backend`: ``fn(params, inputs, outputs=None) -> {name: array}``."""
        key = ("inference", backend if isinstance(backend, str) else id(backend), opt_level)
        if key not in self._compiled:
            self._compiled[key] = backend_of(backend).compile(self.compile(grad=False, opt_level=opt_level))
        executable = self._compiled[key]
        return lambda params, inputs, outputs=None: executable(inputs, params, outputs)

    def train_step(self, optimizer: Optimizer | None = None, backend: str | runtime.Backend = "numpy",
                   opt_level: int = 2) -> TrainStep:
        """One optimizer step compiled by `backend`, as a pure function
        ``step(params, state, batch) -> (params, state, loss)``; ``step.initial_state()`` is the
        optimizer's starting state. `optimizer` defaults to the train block's."""
        self._require_loss()
        optimizer = optimizer or (self.train_config or TrainConfig()).optimizer
        graph = train_step_graph(self.graph, optimizer, opt_level)
        return TrainStep(self.graph, optimizer, backend_of(backend).compile(graph))

    # ---- ONNX ----
    def export_onnx(self, path: str, params: dict | None = None, *, grad: bool = False, train: bool = False,
                    opt_level: int = 1, seed: int = 0):
        """Write the inference graph as ONNX; with `grad` the loss and d(loss)/d(param) outputs,
        with `train` one whole optimizer step (params, optimizer state, batch -> new params, new
        state, loss). Parameters are initializers (and, for gradient and training graphs, inputs
        whose initializer is a default the caller may override)."""
        from nngraph.onnx.export import export  # onnx is imported only when exporting
        params = self.init(seed) if params is None else check_params(self.graph, params)
        if train:
            self._require_loss()
            optimizer = (self.train_config or TrainConfig()).optimizer
            graph = train_step_graph(self.graph, optimizer, opt_level)
            values = params | initial_state(self.graph, optimizer)
        else:
            graph, values = self.compile(grad=grad, opt_level=opt_level), params
        return export(graph, values, path, params_as_inputs=grad or train,
                      doc_string=f"{self.name} from {os.path.basename(self.path)}"
                                 + (" (training step)" if train else " (gradient)" if grad else ""))

    # ---- word vectors ----
    def vocabulary(self) -> list[str]:
        """The words of a `skipgram(...)` training corpus; a word's id is its place in the list."""
        config = self.train_config
        if config is None or config.data is None or config.data.kind != "skipgram":
            raise NNError(f"model `{self.name}` is not trained on a text corpus, so it has no vocabulary",
                          self.graph_span(), hint='train it with `data = skipgram("corpus.txt", ...)`')
        return datasets.vocabulary(config.data)[0]

    def word_vectors(self, params: dict) -> np.ndarray:
        """The embedding table that the `centre` words index: one row per word of the vocabulary."""
        params = check_params(self.graph, params)
        centre = next((v for v in self.graph.inputs if v.name == "centre"), None)
        tables = [n.inputs[0].name for n in self.graph.nodes if n.op == "gather" and centre is not None
                  and n.inputs[1] is centre and n.inputs[0].name in params]
        if not tables:
            raise NNError(f"model `{self.name}` has no embedding table indexed by an input `centre`",
                          self.graph_span(), hint="word vectors are the rows of e.g. `embedding[vocab, dim](centre)`")
        return params[tables[0]]

    def neighbours(self, params: dict, word: str, k: int = 5) -> list[tuple[str, float]]:
        """The k words whose vectors have the highest cosine similarity with `word`'s."""
        words, word = self.vocabulary(), word.lower()       # the vocabulary is lower-cased
        if word not in words:
            raise NNError(f"`{word}` is not one of the {len(words)} words of {self.train_config.data.path}",
                          hint=did_you_mean(word, words) or f"for example: {', '.join(words[:8])}")
        vectors = self.word_vectors(params).astype(np.float64)
        if len(vectors) != len(words):
            raise NNError(f"the word vectors have {len(vectors)} rows but {self.train_config.data.path} has "
                          f"{len(words)} distinct words", hint="were the weights trained on another corpus?")
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        cosine = unit @ unit[words.index(word)]
        order = [i for i in np.argsort(-cosine, kind="stable") if words[i] != word][:k]
        return [(words[i], float(cosine[i])) for i in order]


def backend_of(backend: str | runtime.Backend) -> runtime.Backend:
    return runtime.get(backend) if isinstance(backend, str) else backend


class TrainStep:
    """A compiled optimizer step: ``step(params, state, batch) -> (params, state, loss)``."""

    def __init__(self, model: Graph, optimizer: Optimizer, executable):
        self.model, self.optimizer, self.executable = model, optimizer, executable

    def initial_state(self) -> dict[str, np.ndarray]:
        return initial_state(self.model, self.optimizer)

    def __call__(self, params: dict, state: dict, batch: dict) -> tuple[dict, dict, float]:
        out = self.executable(dict(batch) | state, params)
        return ({p: out[new_name(p)] for p in params}, {s: out[new_name(s)] for s in state},
                float(out[self.model.loss]))


def inference_part(graph: Graph) -> Graph:
    """A copy of `graph` without its loss and the targets only the loss read."""
    g, _ = graph.clone()
    g.outputs.pop(g.loss, None) if g.loss else None
    g.loss = None
    g.prune()
    used = {v.uid for n in g.nodes for v in n.inputs} | {v.uid for v in g.outputs.values()}
    g.inputs = [v for v in g.inputs if v.uid in used or v.name not in g.targets]
    g.targets = {t for t in g.targets if t in {v.name for v in g.inputs}}
    return g


def load(path: str, model: str | None = None, dtype: str = "float32", constants: dict | None = None) -> Model:
    """Parse, elaborate and shape-check a .nn file; `model` picks one of several models by name.
    A .onnx file is imported instead (nngraph.onnx.importer): its initializers are the weights that
    `Model.init` returns, and `constants` freezes graph inputs that give shapes or axes."""
    if path.lower().endswith(".onnx"):
        return load_onnx(path, constants)
    program = load_program(path)
    module = program.module
    if not module.models:
        raise NNError(f"{path} defines no model", None, hint="add `model NAME { ... }`")
    if model is None and len(module.models) > 1:
        names = ", ".join(m.name for m in module.models)
        raise NNError(f"{path} defines several models ({names}); choose one", None)
    chosen = module.models[0] if model is None else next((m for m in module.models if m.name == model), None)
    if chosen is None:
        raise NNError(f"{path} has no model `{model}`", None,
                      hint=did_you_mean(model, [m.name for m in module.models]))
    elab = Elaborator(program.names, float_dtype=dtype)
    graph = elab.model(chosen)
    trains = [t for t in module.trains if t.model == chosen.name]
    for t in module.trains:
        if t.model not in {m.name for m in module.models}:
            raise NNError(f"`train {t.model}` names no model in this file", t.span,
                          hint=did_you_mean(t.model, [m.name for m in module.models]))
    config = elab.train_config(trains[-1], os.path.dirname(path)) if trains else None
    return Model(path, graph, config)


def check_params(graph: Graph, params: dict) -> dict[str, np.ndarray]:
    """Parameters from a weights file: every one present, with the declared shape; nothing extra."""
    declared = {p.name: p for p in graph.params}
    extra = sorted(set(params) - set(declared))
    if extra:
        raise NNError(f"the weights file has parameters the model does not declare: {', '.join(extra)}",
                      None, hint=did_you_mean(extra[0], declared))
    checked = {}
    for name, p in declared.items():
        if name not in params:
            raise NNError(f"the weights file has no parameter `{name}` ({p.type})", p.span)
        array = np.asarray(params[name])
        if array.shape != tuple(p.shape):
            raise NNError(f"parameter `{name}` is declared {p.type} but the weights file holds shape "
                          f"{list(array.shape)}", p.span)
        checked[name] = array.astype(p.dtype, copy=False)
    return checked


def load_onnx(path: str, constants: dict | None = None) -> Model:
    """An ONNX model as a Model with no loss and no train block (see nngraph.onnx.importer)."""
    from nngraph.onnx.importer import import_onnx
    graph, _weights = import_onnx(path, constants)    # the weights are also the params' ParamInit
    return Model(path, graph, None)

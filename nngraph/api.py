"""The Python API, mirroring the CLI: load a model file, check, compile, init, train, run.

    model = nngraph.load("models/squiggle.nn")
    result = model.train(seed=0)
    outputs = model.run(result.params, {"dose": [[0.0], [0.5], [1.0]]})
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from nngraph import autodiff, runtime
from nngraph.diagnostics import NNError, did_you_mean
from nngraph.dsl.elaborate import Elaborator
from nngraph.dsl.loader import load_program
from nngraph.files import split_meta
from nngraph.ir import Graph
from nngraph.passes import optimize, optimize_before_grad
from nngraph.passes.modes import to_inference
from nngraph.training import data as datasets
from nngraph.training import schedules
from nngraph.training.checkpoint import Checkpointer, load_checkpoint
from nngraph.training.config import DataSource, Optimizer, TrainConfig
from nngraph.training.loop import TrainResult, fit
from nngraph.training.params import init_params
from nngraph.training.step import initial_state, new_name, train_step_graph
from nngraph.training.training_log import training_log


class Model:
    def __init__(self, path: str, graph: Graph, train_config: TrainConfig | None):
        self.path, self.graph, self.train_config = path, graph, train_config
        self._compiled: dict[tuple, object] = {}

    @property
    def name(self) -> str:
        return self.graph.name

    def _repr_html_(self) -> str:
        """In Jupyter, the interactive picture of the model (as `nngraph compile MODEL -o graph.html`)."""
        from nngraph.visualize import notebook_html  # pydot and the page's assets: only when shown
        return notebook_html(self.compile(opt_level=1))

    # ---- graphs ----
    def inference_graph(self, outputs: list[str] | None = None) -> Graph:
        """The model without its loss: what `run` executes and what ships."""
        return inference_part(self.graph, outputs)

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
                observe=None, outputs: list[str] | None = None) -> Graph:
        """The optimized inference graph (computing only `outputs`, default all), or with `grad`
        the loss and d(loss)/d(param) outputs. `stats` and `observe` are passed to the pass
        pipeline (see nngraph.passes.optimize)."""
        if grad:
            self._require_loss()
        model, _ = self.graph.clone()
        model = optimize_before_grad(model, opt_level, stats, observe)
        graph = autodiff.grad(model) if grad else inference_part(model, outputs)
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
        return datasets.load(config.data, to_inference(self.graph.clone()[0]), config.seed)   # no `step` input

    def train(self, params=None, *, epochs: int | None = None, lr: float | None = None, batch: int | None = None,
              seed: int | None = None, data: datasets.Dataset | None = None, progress: bool | None = None,
              backend: str | runtime.Backend = "numpy", log=None, checkpoint: str | None = None,
              checkpoint_every: int = 1, resume: str | None = None) -> TrainResult:
        """Train from the `train` block's settings; keyword arguments override them. `backend` is
        the runtime that executes the training step: a name (see nngraph.runtime) or a backend
        made with options, e.g. ``nngraph.runtime.get("jax", devices=4)``. `log` is a path
        (.jsonl or .csv: one record per epoch) or a function called with each record;
        `checkpoint` a folder that gets a checkpoint every `checkpoint_every` epochs; `resume`
        a checkpoint (or such a folder) to continue from, to `epochs` in all."""
        if self.graph.loss is None:
            raise NNError(f"model `{self.name}` has no loss to train", self.graph_span(), hint="add `loss = ...`")
        base = self.train_config or TrainConfig()
        optimizer = dataclasses.replace(base.optimizer, settings=dict(base.optimizer.settings) | ({"lr": lr} if lr else {}))
        config = dataclasses.replace(base, optimizer=optimizer, epochs=epochs or base.epochs, batch=batch or base.batch,
                                     seed=base.seed if seed is None else seed)
        data = data or self.load_data(config)
        config = schedules.resolve_for_run(config, data.size)     # a decay over the whole run
        params = self.init(config.seed) if params is None else check_params(self.graph, params)
        with training_log(log) as write:
            return fit(self.graph, params, data, config, backend_of(backend), progress, log=write,
                       checkpoints=Checkpointer(checkpoint, checkpoint_every, self.name) if checkpoint else None,
                       resume=load_checkpoint(resume) if resume else None)

    def run(self, params: dict | None = None, inputs: dict | None = None, outputs: list[str] | None = None,
            backend: str | runtime.Backend = "numpy") -> dict:
        """The inference graph's `outputs` (default: all), computing only what they need. Inputs
        default to the training data's; inputs no requested output reads are not needed (and
        are ignored if given)."""
        params = self.init() if params is None else check_params(self.graph, params)
        if inputs is None:
            inputs = {k: v for k, v in self.load_data().arrays.items() if k not in self.graph.targets}
        needed = {v.name for v in self.inference_graph(outputs).inputs}
        inputs = {k: v for k, v in inputs.items() if k in needed}
        return self.inference(backend, outputs=outputs)(params, inputs)

    def evaluate(self, params: dict, data=None, backend: str | runtime.Backend = "numpy",
                 metrics: list[str] | None = None):
        """The loss and metrics (the train block's `metrics`, default accuracy for a classifier)
        on `data`: a Dataset, a .csv/.npz path read like the train block's data, or None for the
        train block's held-out rows (all its rows when it holds none out). A classifier's result
        also has `per_class`: precision, recall and F1 of each class, by class name."""
        from nngraph.training.loop import evaluate, evaluation_graph, split
        from nngraph.training.metrics import label_pair, per_class
        self._require_loss()
        params, meta = params if isinstance(params, tuple) else split_meta(params)     # (params, meta) of load_weights
        params = check_params(self.graph, params)
        config = self.train_config or TrainConfig()
        if data is None:
            data = self.load_data()
            data = split(data, config.holdout, config.seed)[1] or data
        elif isinstance(data, str):
            data = self.load_data(dataclasses.replace(config, data=source_like(data, config.data)))
        names = metrics if metrics is not None else config.metrics
        result = evaluate(self.graph, params, data, backend_of(backend).compile(evaluation_graph(self.graph)),
                          names, config.ignore_label, keep_outputs=True)
        pair = label_pair(self.graph)
        if pair:
            classes = (meta.get("classes") or {}).get(pair[1]) or data.classes.get(pair[1])
            result.per_class = per_class(result.outputs[pair[0]], data.arrays[pair[1]], classes, config.ignore_label)
        result.rows = data.size
        return result

    def class_names(self, meta: dict | None = None) -> dict[str, list[str]]:
        """{output: class names} for a classifier's label output, from a weights file's metadata
        (`meta`) or else the training data's label words; {} when the labels are plain numbers."""
        from nngraph.training.metrics import label_pair
        pair = label_pair(self.graph)
        if pair is None:
            return {}
        names = (meta or {}).get("classes", {}).get(pair[1])
        return {pair[0]: names} if names else {}

    def summary(self, file=None) -> str:
        """Print (and return) a table of the layers, their output shapes and parameter counts."""
        from nngraph.visualize.summary import summary_table
        text = summary_table(self.graph)
        print(text, file=file)
        return text

    def _repr_svg_(self):
        """In Jupyter a model shows its inference graph (None, hence text, without a renderer)."""
        from nngraph.visualize import find_renderer, picture, plan_for, render
        if find_renderer() is None:
            return None
        graph = self.inference_graph()
        return render(picture(graph, plan=plan_for(graph, None))[0], "svg").decode()

    # ---- compiled functions, for programs and benchmarks ----
    def inference(self, backend: str | runtime.Backend = "numpy", opt_level: int = 1, outputs: list[str] | None = None):
        """The inference graph compiled once by `backend`: ``fn(params, inputs, outputs=None) -> {name: array}``;
        with `outputs` a graph computing only those."""
        key = ("inference", backend if isinstance(backend, str) else id(backend), opt_level,
               tuple(outputs) if outputs is not None else None)
        if key not in self._compiled:
            self._compiled[key] = backend_of(backend).compile(self.compile(grad=False, opt_level=opt_level,
                                                                           outputs=outputs))
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
            config = self.train_config or TrainConfig()
            if schedules.resolve(config.optimizer, 0) is not config.optimizer and config.data is not None:
                config = schedules.resolve_for_run(config, self.load_data(config).size)   # decay over the run
            graph = train_step_graph(self.graph, config.optimizer, opt_level)
            values = params | initial_state(self.graph, config.optimizer)
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


def inference_part(graph: Graph, outputs: list[str] | None = None) -> Graph:
    """A copy of `graph` without its loss, computing only `outputs` (default: all but the loss),
    and taking only the inputs those read: not the targets, nor e.g. a decoder's teacher-forced
    input that only the loss reads."""
    g = to_inference(graph.clone()[0])        # no dropout, batch norm's running statistics
    g.outputs.pop(g.loss, None) if g.loss else None
    g.loss = None
    if outputs is not None:
        unknown = [o for o in outputs if o not in g.outputs]
        if unknown:
            raise NNError(f"model `{graph.name}` has no output `{unknown[0]}`",
                          hint=did_you_mean(unknown[0], g.outputs) or f"its outputs: {', '.join(g.outputs)}")
        g.outputs = {name: g.outputs[name] for name in outputs}
    g.prune()
    used = {v.uid for n in g.nodes for v in n.inputs} | {v.uid for v in g.outputs.values()}
    g.inputs = [v for v in g.inputs if v.uid in used]
    g.targets = {t for t in g.targets if t in {v.name for v in g.inputs}}
    return g


def load(path: str, model: str | None = None, dtype: str = "float32", constants: dict | None = None,
         trainable: list[str] | None = None) -> Model:
    """Parse, elaborate and shape-check a .nn file; `model` picks one of several models by name.
    A .onnx file is imported instead (nngraph.onnx.importer): its weight initializers are the
    parameters `Model.init` returns (`trainable` lists them by name or pattern, overriding the
    sorting of literals from weights), and `constants` freezes graph inputs that give shapes or axes."""
    if path.lower().endswith(".onnx"):
        return load_onnx(path, constants, trainable)
    program = load_program(path)
    module = program.module
    if not module.models:
        raise NNError(f"{path} defines no model", None, hint="add `model NAME { ... }`")
    chosen = module.models[0] if model is None else next((m for m in module.models if m.name == model), None)
    if model is None and len(module.models) > 1:
        chosen = only_trained(path, module)
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
    params = split_meta(params)[0]            # a weights file's metadata is no parameter
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


def load_onnx(path: str, constants: dict | None = None, trainable: list[str] | None = None) -> Model:
    """An ONNX model as a Model with no loss and no train block (see nngraph.onnx.importer)."""
    from nngraph.onnx.importer import import_onnx
    graph, _weights = import_onnx(path, constants, trainable=trainable)    # the weights are also the params' ParamInit
    return Model(path, graph, None)


def only_trained(path: str, module):
    """Of several models, the one with a `train` block when exactly one has it."""
    trained = [m for m in module.models if any(t.model == m.name for t in module.trains)]
    if len(trained) == 1:
        return trained[0]
    names = [m.name for m in module.models]
    which = "none" if not trained else f"{len(trained)} ({', '.join(m.name for m in trained)})"
    raise NNError(f"{path} defines {len(names)} models ({', '.join(names)}) and {which} of them has a train block; "
                  f"choose one with --model-name", None,
                  hint=f"e.g. --model-name {names[0]} (choices: {', '.join(names)}); in Python, load(path, model=NAME)")


def model_names(path: str) -> list[str]:
    """The names of the models a .nn file defines (one for an .onnx file)."""
    if path.lower().endswith(".onnx"):
        return [load_onnx(path).name]
    return [m.name for m in load_program(path).module.models]


def source_like(path: str, like: DataSource | None) -> DataSource:
    """A data source for another file of the train block's kind: its column mapping carries over
    when the kind matches (a .csv for a csv(...) block, say)."""
    kind = os.path.splitext(path)[1].lower().lstrip(".")
    if kind not in ("csv", "npz"):
        raise NNError(f"--data takes a .csv or .npz file, not {path}")
    columns = like.columns if like is not None and like.kind == kind else {}
    return DataSource(kind, path, dict(columns))

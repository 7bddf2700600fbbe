"""nngraph's three backends (NumPy, JAX, ONNX Runtime) side by side with the same model written by
hand in `jax.jit` and in PyTorch, and with onnxruntime called directly: training steps, inference
and compile times of five workloads (bench/models/*.nn), measured in turns in one run. Prints
README-ready markdown tables.

    python bench/backends.py [--workloads mlp,cnn,lstm,gpt,word2vec] [--blocks 30]
                             [--block-seconds 0.1] [--threads 1]

Training: one plain-SGD step (the same lr everywhere) on a fixed synthetic batch, the loss read
back on the host every step. nngraph's steps run as `nngraph train` runs them: the JAX backend's
loop keeps parameters on the device with donated buffers, onnxruntime's binds them with I/O
binding, NumPy's feeds them back. The hand-written JAX step is jax.grad + SGD in one jax.jit with
the parameters donated; PyTorch's is eager autograd + torch.optim.SGD. Every implementation starts
from nngraph's model.init(0); before timing, the first step's loss must agree (rtol 1e-4) and so
must every parameter's update (rtol 1e-3 of its largest entry): the same model and gradients.

Inference: the inference graph (-O1) on each backend (JAX's params placed on the device once,
onnxruntime's built into its session with `bind(params)`),
the hand-written jax.jit forward, PyTorch eager under torch.no_grad(), and onnxruntime called
directly: on the model nngraph exports (model.export_onnx: parameters as initializers), and on the
backend's own session with the parameters fed as inputs (the backend's Python overhead alone).
Outputs must agree with the NumPy backend's (rtol 1e-4) before timing.

Timing: each candidate runs in blocks of about --block-seconds; one round runs one block of every
candidate of a workload (starting with a different one each round), and the table shows the
median over --blocks rounds, so a change in the machine's load reaches every candidate alike.
"""
from __future__ import annotations

import argparse
import os
import sys

WORKLOAD_NAMES = ["mlp", "cnn", "lstm", "gpt", "word2vec"]


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOAD_NAMES),
                        help=f"comma-separated, of: {', '.join(WORKLOAD_NAMES)}")
    parser.add_argument("--blocks", type=int, default=30, help="rounds of blocks; the median block counts")
    parser.add_argument("--block-seconds", type=float, default=0.1, help="about how long one block runs")
    parser.add_argument("--threads", type=int, default=1, help="threads for every library (default 1)")
    parser.add_argument("--lr", type=float, default=0.01, help="the SGD learning rate of every implementation")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in WORKLOAD_NAMES]
    if unknown:
        parser.error(f"unknown workloads {', '.join(unknown)}; choose from {', '.join(WORKLOAD_NAMES)}")
    return args


def pin_threads(threads: int) -> None:
    """Thread counts through the environment: must run before numpy, jax or torch is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()


if __name__ == "__main__":
    pin_threads(arguments().threads)

import statistics
import tempfile
import time
from dataclasses import dataclass, field

import jax
import numpy as np
import onnxruntime as ort
import twins
from twins import torch  # None when PyTorch is not installed

import nngraph
import nngraph.runtime
from nngraph.training.config import Optimizer
from nngraph.training.loop import step_loop
from nngraph.training.step import initial_state, train_step_graph

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Workload:
    name: str
    file: str                   # under bench/models/
    batch: int
    label: str                  # for the tables
    ints: dict[str, int]        # integer input -> ids drawn from [0, n)


WORKLOADS = {w.name: w for w in [
    Workload("mlp", "mlp.nn", 64, "MLP 784-256-256-10, batch 64", {"label": 10}),
    Workload("cnn", "lenet.nn", 64, "LeNet-5 CNN 1×28×28, batch 64", {"label": 10}),
    Workload("lstm", "lstm128.nn", 32, "LSTM hidden 128, 32 steps × 64, batch 32", {"label": 10}),
    Workload("gpt", "gpt128.nn", 16, "GPT d128, 2 layers, 4 heads, 16×64 tokens", {"text": 64, "next": 64}),
    Workload("word2vec", "w2v5000.nn", 512, "word2vec SGNS 5000×100, 512 pairs, 5 negatives",
             {"centre": 5000, "context": 5000, "negatives": 5000}),
]}

TRAIN_COLUMNS = ["nngraph numpy", "nngraph jax", "nngraph ort", "jax.jit", "PyTorch"]
INFER_COLUMNS = ["nngraph numpy", "nngraph jax", "nngraph ort", "jax.jit", "PyTorch", "ort direct", "ort same session"]


@dataclass
class Result:
    workload: Workload
    first_loss: float = float("nan")
    train: dict[str, list[float]] = field(default_factory=dict)      # column -> seconds per step, per block
    infer: dict[str, list[float]] = field(default_factory=dict)
    compile: dict[str, float] = field(default_factory=dict)          # stage -> seconds


def synthetic_batch(graph, w: Workload) -> dict[str, np.ndarray]:
    """Every input of `graph` at the workload's batch size: normal floats, ids in their range."""
    rng = np.random.default_rng(0)
    batch = {}
    for v in graph.inputs:
        shape = tuple(w.batch if isinstance(d, str) else d for d in v.shape)
        batch[v.name] = rng.integers(0, w.ints[v.name], shape).astype(v.dtype) if v.dtype.startswith("int") \
            else rng.normal(size=shape).astype(v.dtype)
    return batch


def timed(run):
    start = time.perf_counter()
    value = run()
    return value, time.perf_counter() - start


def backend(name: str, threads: int):
    return nngraph.runtime.get(name, threads=threads) if name == "onnxruntime" else nngraph.runtime.get(name)


def ort_session(proto, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 4
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------- training candidates
class LoopStep:
    """An nngraph training executable run through its backend's own loop (step_loop)."""

    def __init__(self, executable, params, state, batch, loss: str):
        self.loop, self.batch, self.loss = step_loop(executable, dict(params), dict(state)), batch, loss

    def __call__(self) -> float:
        return float(self.loop.step(self.batch)[self.loss])

    def params(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.loop.params().items()}


class JaxStep:
    """The hand-written jax.jit step: jax.grad of the twin's loss, SGD, the parameters donated."""

    def __init__(self, workload: str, params, batch, lr: float):
        self.fn = twins.jax_sgd_step(twins.JAX_TWINS[workload][1], lr)
        self.p, self.batch = jax.device_put(dict(params)), batch

    def __call__(self) -> float:
        self.p, loss = self.fn(self.p, self.batch)
        return float(loss)

    def params(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.p.items()}


class TorchStep:
    """The PyTorch twin: eager forward and backward, torch.optim.SGD."""

    def __init__(self, workload: str, params, batch, lr: float):
        module_class, _, self.loss = twins.TORCH_TWINS[workload]
        self.module = module_class()
        twins.to_torch(self.module, params)
        self.optimizer = torch.optim.SGD([p for p in self.module.parameters() if p.requires_grad], lr=lr)
        self.batch = {k: torch.from_numpy(v) for k, v in batch.items()}

    def __call__(self) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.module, self.batch)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def params(self) -> dict[str, np.ndarray]:
        return twins.from_torch(self.module)


def training_candidates(w: Workload, model, args, result: Result) -> dict:
    """Every training step of `w`, each run once (the compile times) and checked against NumPy's."""
    optimizer = Optimizer("sgd", {"lr": args.lr})
    graph, result.compile["train: train_step_graph"] = timed(lambda: train_step_graph(model.graph, optimizer, 2))
    params, batch = model.init(0), synthetic_batch(model.graph, w)
    state = initial_state(model.graph, optimizer)
    steps = {}
    for column, name in [("nngraph numpy", "numpy"), ("nngraph jax", "jax"), ("nngraph ort", "onnxruntime")]:
        exe, result.compile[f"train: {column} compile"] = timed(lambda: backend(name, args.threads).compile(graph))
        steps[column] = LoopStep(exe, params, state, batch, model.graph.loss)
    steps["jax.jit"] = JaxStep(w.name, params, batch, args.lr)
    if torch is not None:
        steps["PyTorch"] = TorchStep(w.name, params, batch, args.lr)
    losses = {}
    for column, step in steps.items():
        losses[column], result.compile[f"train: {column} first step"] = timed(step)
    reference = losses["nngraph numpy"]
    for column, loss in losses.items():
        np.testing.assert_allclose(loss, reference, rtol=1e-4, err_msg=f"{w.name}: {column}'s first-step loss")
    updated = {column: step.params() for column, step in steps.items()}
    wanted = {p: updated["nngraph numpy"][p] - init for p, init in params.items()}
    largest = max(np.abs(u).max() for u in wanted.values())     # a zero gradient (a key bias) is noise
    for column, new in updated.items():
        for p, init in params.items():      # the same update: the same gradient, the same SGD
            # (+ a few ulps of the parameter itself: an update read back as new - old carries the
            # rounding of new, and a scatter-add rounds once per repeated row)
            ulps = 8 * np.finfo(init.dtype).eps * np.abs(init).max()
            np.testing.assert_allclose(new[p] - init, wanted[p], rtol=1e-3,
                                       atol=1e-3 * np.abs(wanted[p]).max() + 1e-6 * largest + ulps,
                                       err_msg=f"{w.name}: {column}'s first update of {p}")
    result.first_loss = reference
    return steps


# ---------------------------------------------------------------- inference candidates
def inference_candidates(w: Workload, model, args, result: Result, tmp: str) -> dict:
    """Every inference of `w` as a callable returning {output: NumPy array}, run once (the compile
    times) and checked against the NumPy backend's outputs."""
    graph, result.compile["infer: model.compile"] = timed(lambda: model.compile(opt_level=1))
    params = model.init(0)
    feeds = synthetic_batch(graph, w)
    names = list(graph.outputs)
    runs, executables = {}, {}
    for column, name in [("nngraph numpy", "numpy"), ("nngraph jax", "jax"), ("nngraph ort", "onnxruntime")]:
        executables[name], result.compile[f"infer: {column} compile"] = timed(
            lambda: backend(name, args.threads).compile(graph))
    runs["nngraph numpy"] = lambda: executables["numpy"](feeds, params)
    on_device = executables["jax"].device_put(params)
    runs["nngraph jax"] = lambda: executables["jax"](feeds, on_device)
    bound = executables["onnxruntime"].bind(params)       # the weights built in, as jax keeps them on the device
    runs["nngraph ort"] = lambda: bound(feeds)

    outputs_fn = jax.jit(twins.JAX_TWINS[w.name][0])
    jax_params = jax.device_put(params)
    runs["jax.jit"] = lambda: {k: np.asarray(v) for k, v in outputs_fn(jax_params, feeds).items()}
    if torch is not None:
        module_class, outputs, _ = twins.TORCH_TWINS[w.name]
        module = module_class().eval()
        twins.to_torch(module, params)
        tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}

        def torch_run():
            with torch.no_grad():
                return {k: v.numpy() for k, v in outputs(module, tensors).items()}
        runs["PyTorch"] = torch_run

    def direct(session, given):
        wanted = [i.name for i in session.get_inputs()]
        ort_feeds, out_names = {k: given[k] for k in wanted}, [o.name for o in session.get_outputs()]
        return lambda: dict(zip(out_names, session.run(None, ort_feeds)))

    path = os.path.join(tmp, f"{w.name}.onnx")
    session, result.compile["infer: export_onnx + session"] = timed(
        lambda: ort_session(model.export_onnx(path, params, opt_level=1), args.threads))
    runs["ort direct"] = direct(session, feeds)
    runs["ort same session"] = direct(executables["onnxruntime"].session, feeds | params)

    reference = None
    for column, run in runs.items():
        out, result.compile[f"infer: {column} first call"] = timed(run)
        reference = reference or out
        for name in names:
            np.testing.assert_allclose(out[name], reference[name], rtol=1e-4, atol=1e-6,
                                       err_msg=f"{w.name}: {column}'s output {name}")
    return runs


# ---------------------------------------------------------------- timing
def in_turns(candidates: dict, blocks: int, block_seconds: float) -> dict[str, list[float]]:
    """Seconds per call of each candidate, one number per block. Blocks are sized to
    `block_seconds` by a warm-up block; each round runs one block of every candidate, starting
    with the next candidate each round."""
    repeats = {}
    for name, run in candidates.items():
        start, done = time.perf_counter(), 0
        while done < 2 or time.perf_counter() - start < block_seconds:
            run()
            done += 1
        repeats[name] = max(1, round(block_seconds * done / (time.perf_counter() - start)))
    order, samples = list(candidates), {name: [] for name in candidates}
    for r in range(blocks):
        for name in order[r % len(order):] + order[:r % len(order)]:
            run, repeat = candidates[name], repeats[name]
            start = time.perf_counter()
            for _ in range(repeat):
                run()
            samples[name].append((time.perf_counter() - start) / repeat)
    return samples


def median_ms(samples: list[float] | None) -> float:
    return statistics.median(samples) * 1e3 if samples else float("nan")


def spread(samples: list[float]) -> float:
    """(75th - 25th percentile) / median: how noisy a candidate's blocks were."""
    q = statistics.quantiles(samples, n=4)
    return (q[2] - q[0]) / statistics.median(samples)


# ---------------------------------------------------------------- tables
def ms(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def time_cells(times: dict[str, float], columns: list[str]) -> list[str]:
    return ["not installed" if c == "PyTorch" and torch is None else ms(times[c]) for c in columns]


def ratio(a: float, b: float) -> str:
    return "n/a" if a != a or b != b else f"{a / b:.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def training_table(results: list[Result]) -> str:
    header = ["workload (SGD)", "first loss"] + [f"{c} ms" for c in TRAIN_COLUMNS] + [
        "jax / jax.jit", "numpy / PyTorch", "jax / PyTorch", "ort / PyTorch"]
    rows = []
    for r in results:
        t = {c: median_ms(r.train.get(c)) for c in TRAIN_COLUMNS}
        rows.append([r.workload.label, f"{r.first_loss:.5f}"] + time_cells(t, TRAIN_COLUMNS) + [
            ratio(t["nngraph jax"], t["jax.jit"]), ratio(t["nngraph numpy"], t["PyTorch"]),
            ratio(t["nngraph jax"], t["PyTorch"]), ratio(t["nngraph ort"], t["PyTorch"])])
    return table(header, rows)


def inference_table(results: list[Result]) -> str:
    header = ["workload"] + [f"{c} ms" for c in INFER_COLUMNS] + [
        "jax / jax.jit", "ort / ort direct", "ort / same session", "numpy / PyTorch"]
    rows = []
    for r in results:
        t = {c: median_ms(r.infer.get(c)) for c in INFER_COLUMNS}
        rows.append([r.workload.label] + time_cells(t, INFER_COLUMNS) + [
            ratio(t["nngraph jax"], t["jax.jit"]), ratio(t["nngraph ort"], t["ort direct"]),
            ratio(t["nngraph ort"], t["ort same session"]), ratio(t["nngraph numpy"], t["PyTorch"])])
    return table(header, rows)


COMPILE_COLUMNS = [
    ("train_step_graph", "train: train_step_graph"), ("numpy compile", "train: nngraph numpy compile"),
    ("jax compile + 1st step", ("train: nngraph jax compile", "train: nngraph jax first step")),
    ("jax.jit 1st step", "train: jax.jit first step"),
    ("ort compile (export + session)", "train: nngraph ort compile"),
    ("model.compile -O1", "infer: model.compile"),
    ("jax compile + 1st call", ("infer: nngraph jax compile", "infer: nngraph jax first call")),
    ("jax.jit 1st call", "infer: jax.jit first call"), ("ort compile", "infer: nngraph ort compile"),
    ("export_onnx + session", "infer: export_onnx + session"),
]


def compile_table(results: list[Result]) -> str:
    header = ["workload"] + [f"{'train' if i < 5 else 'infer'}: {label} s" for i, (label, _) in enumerate(COMPILE_COLUMNS)]
    rows = []
    for r in results:
        cells = []
        for _, keys in COMPILE_COLUMNS:
            keys = keys if isinstance(keys, tuple) else (keys,)
            cells.append(f"{sum(r.compile.get(k, float('nan')) for k in keys):.3f}")
        rows.append([r.workload.name] + cells)
    return table(header, rows)


def noise_note(results: list[Result]) -> str:
    noisy = [f"{r.workload.name}/{kind}/{c} ±{spread(s):.0%}" for r in results
             for kind, times in (("train", r.train), ("infer", r.infer)) for c, s in times.items()
             if len(s) >= 4 and spread(s) > 0.1]
    return ("Noisy (interquartile range over 10% of the median): " + ", ".join(noisy)) if noisy else \
        "Every median's interquartile range is within 10% of it."


# ---------------------------------------------------------------- main
def limit_threads(threads: int) -> str:
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "threadpoolctl not installed"
    threadpool_limits(threads)
    return "threadpoolctl"


def main() -> int:
    args = arguments()
    how = limit_threads(args.threads)
    torch_version = f"PyTorch {torch.__version__}" if torch is not None else "PyTorch not installed"
    print(f"float32, {args.threads} thread(s) per library ({how}); {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; median of {args.blocks} rounds of ~{args.block_seconds} s blocks, taken in "
          f"turns; SGD lr {args.lr}. NumPy {np.__version__}, jax {jax.__version__}, onnxruntime "
          f"{ort.__version__}, {torch_version}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workloads:
            w = WORKLOADS[name]
            model = nngraph.load(os.path.join(HERE, "models", w.file))
            result = Result(w)
            print(f"{name}: compiling and checking ...", file=sys.stderr, flush=True)
            steps = training_candidates(w, model, args, result)
            runs = inference_candidates(w, model, args, result, tmp)
            print(f"{name}: timing ...", file=sys.stderr, flush=True)
            result.train = in_turns(steps, args.blocks, args.block_seconds)
            result.infer = in_turns(runs, args.blocks, args.block_seconds)
            results.append(result)
            del steps, runs
    print("\n### Training step (ms per step, median)\n")
    print(training_table(results))
    print("\n### Inference (ms per call, median)\n")
    print(inference_table(results))
    print("\n### Compile time (seconds, once per model)\n")
    print(compile_table(results))
    print()
    print(noise_note(results))
    if torch is None:
        print("PyTorch: not installed (pip install torch==2.13.0); its columns are n/a.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

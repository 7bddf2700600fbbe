"""Import time and run time of real-world ONNX models: nngraph (import and -O1 optimization, then
the NumPy runtime) against onnxruntime (session creation, then a run), one thread each, in turns.

    python bench/onnx_import.py [--repeat 7]

The models are those of tests/onnx/test_real_world.py: PyTorch exports (tests/onnx/data) and the
onnx package's light zoo networks with random weights (vgg19 too: its 143M weights pass nngraph's
constant limit, raised here). A model nngraph cannot import yet gets a row saying why. Times are
medians of `--repeat` turns; the import is timed on the file's bytes already in memory.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"                  # before NumPy loads its BLAS: one thread, as onnxruntime below
os.environ.setdefault("NNGRAPH_MAX_CONSTANT_ELEMENTS", "2e8")    # vgg19's first dense layer: 1.03e8 weights

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nngraph.api import Model  # noqa: E402
from nngraph.onnx.context import UnsupportedONNX  # noqa: E402
from nngraph.onnx.importer import import_onnx  # noqa: E402
from nngraph.runtime.numpy.executor import Plan  # noqa: E402
from tests.onnx.real_world import (  # noqa: E402
    LIGHT_LARGE,
    LIGHT_ZOO,
    PYTORCH,
    light_zoo,
    pytorch_export,
    relative_error,
)


def models():
    """(label, ModelProto, feeds) of every model of the suite, the pending ones included."""
    for name in PYTORCH:
        path, ref = pytorch_export(name)
        yield f"PyTorch `{name}`", onnx.load(path), {"x": ref["in:x"], "target": ref["in:target"]}
    for name in LIGHT_ZOO + LIGHT_LARGE:
        model, feeds = light_zoo(name)
        yield f"light zoo `{name}`", model, feeds


def session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def median_times(runs: dict, repeat: int) -> dict[str, float]:
    """Median seconds per call of each function, calling them in turns (the machine's noise spreads
    over all of them alike)."""
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeat):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in seconds.items()}


def row(label: str, model: onnx.ModelProto, feeds: dict, repeat: int) -> str:
    data = model.SerializeToString()
    try:
        graph, weights = import_onnx(onnx.load_from_string(data))
    except UnsupportedONNX as err:
        lacking = "; ".join(sorted({f"{p.op} ({p.reason})" for p in err.problems}))
        return f"| {label} | not imported: {lacking} | | | | | |"
    graph = Model(label, graph, None).compile(opt_level=1)      # as `nngraph run model.onnx` runs it
    plan, sess = Plan(graph), session(data)
    names = [o.name for o in sess.get_outputs()]
    error = max(relative_error(ours, theirs) for ours, theirs in
                zip((plan.run(feeds, weights)[n] for n in names), sess.run(names, feeds)))
    t = median_times({"import": lambda: Model(label, import_onnx(onnx.load_from_string(data))[0], None).compile(),
                      "session": lambda: session(data),
                      "ours": lambda: plan.run(feeds, weights),
                      "theirs": lambda: sess.run(names, feeds)}, repeat)
    return (f"| {label} | {t['import'] * 1e3:.1f} | {t['session'] * 1e3:.1f} | {t['ours'] * 1e3:.2f} | "
            f"{t['theirs'] * 1e3:.2f} | {t['ours'] / t['theirs']:.1f} | {error:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="turns per model; the medians are reported")
    args = parser.parse_args()
    print("| model | nngraph import + -O1 ms | onnxruntime session ms | NumPy run ms | onnxruntime run ms "
          "| run ratio | worst relative error |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, model, feeds in models():
        print(row(label, model, feeds, args.repeat), flush=True)


if __name__ == "__main__":
    main()

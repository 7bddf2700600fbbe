"""Inference time of every model in models/: the NumPy runtime against onnxruntime running the
same model exported to ONNX, measured in turns in one run (a README table).

    python bench/inference_vs_onnxruntime.py [--batch 64] [--budget 0.3]
"""
import argparse
import os
import tempfile

import numpy as np
import onnxruntime as ort
from common import best_time, every_model, random_inputs

from nngraph.runtime.numpy.executor import Plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per model and runtime")
    args = parser.parse_args()
    print(f"| model (batch {args.batch}, -O1) | NumPy runtime µs | onnxruntime µs | NumPy / onnxruntime |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for path, name, model in every_model():
            params = model.init(0)
            graph = model.compile(opt_level=1)
            feeds = random_inputs(graph, args.batch, np.random.default_rng(0))
            plan = Plan(graph)
            proto = model.export_onnx(os.path.join(tmp, "m.onnx"), params, opt_level=1)
            options = ort.SessionOptions()
            options.intra_op_num_threads = os.cpu_count() or 1
            session = ort.InferenceSession(proto.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
            wanted = {i.name for i in session.get_inputs()}
            ort_feeds = {k: v for k, v in feeds.items() if k in wanted}
            ours = best_time(lambda: plan.run(feeds, params), args.budget)
            theirs = best_time(lambda: session.run(None, ort_feeds), args.budget)
            print(f"| {path} `{name}` | {ours * 1e6:.0f} | {theirs * 1e6:.0f} | {ours / theirs:.2f} |")


if __name__ == "__main__":
    main()

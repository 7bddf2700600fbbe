"""`nngraph run MODEL`: run the inference graph on inputs from files or the training data."""
from __future__ import annotations

import os
import sys

import numpy as np

from nngraph.api import Model, load
from nngraph.cli.common import add_backend_arguments, backend_from
from nngraph.diagnostics import NNError, did_you_mean
from nngraph.files import load_npz, save_npz


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a model's inference graph")
    parser.add_argument("model", metavar="MODEL", help="a .nn file, or a .onnx model to import")
    parser.add_argument("--params", metavar="PARAMS.npz", help="weights from `nngraph train` (default: seeded init)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                        help="an input array; by default the inputs of the training data are used")
    parser.add_argument("-o", "--output", metavar="OUT.npz", help="write every output under its name")
    parser.add_argument("--model-name")
    add_backend_arguments(parser)
    parser.set_defaults(command=run)


def run(args) -> int:
    model = load(args.model, args.model_name)
    params = load_npz(args.params) if args.params else None
    if params is None and any(init.kind != "value" for init in model.graph.param_init.values()):
        # (an imported ONNX model runs with the weights of its initializers: kind "value")
        print("note: no --params given; running with the seeded initial weights", file=sys.stderr)
    inputs = parse_inputs(model, args.input) if args.input else None
    outputs = model.run(params, inputs, backend=backend_from(args))
    for name, array in outputs.items():
        print(f"{name}: {array.dtype}{list(array.shape)}")
        print("  " + np.array2string(array, precision=4, threshold=20, edgeitems=3).replace("\n", "\n  "))
    if args.output:
        save_npz(args.output, outputs)
        print(f"wrote {len(outputs)} outputs to {args.output}")
    return 0


def parse_inputs(model: Model, specs: list[str]) -> dict[str, np.ndarray]:
    graph = model.inference_graph()
    declared = [v.name for v in graph.inputs]
    inputs = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise NNError(f"--input takes NAME=FILE.npy, got `{spec}`")
        if name not in declared:
            raise NNError(f"model `{model.name}` has no input `{name}`",
                          hint=did_you_mean(name, declared) or f"its inputs: {', '.join(declared)}")
        if not os.path.exists(path):
            raise NNError(f"--input {name}: no such file: {path}")
        try:
            inputs[name] = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise NNError(f"--input {name}: cannot read {path} as a .npy array: {err}") from None
    return inputs

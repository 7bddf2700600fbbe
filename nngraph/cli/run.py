"""`nngraph run MODEL`: run the inference graph on inputs from files or the training data.
Only what the requested outputs need is computed, and only the inputs they read are needed.
A classifier's labels print as the class names saved with the weights."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from nngraph.cli.common import add_backend_arguments, backend_from
from nngraph.diagnostics import NNError

if TYPE_CHECKING:
    import numpy as np


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a model's inference graph")
    parser.add_argument("model", metavar="MODEL", help="a .nn file, or a .onnx model to import")
    parser.add_argument("--params", metavar="PARAMS.npz", help="weights from `nngraph train` (default: seeded init)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=FILE",
                        help="an input from a .npy file, a .csv file (numbers; a header row is optional) or an "
                             "array of a .npz file (NAME=FILE.npz[:ARRAY]); a bare FILE.npz gives every input it "
                             "names. Repeatable. By default the inputs of the training data are used")
    parser.add_argument("--output-name", action="append", metavar="NAME",
                        help="compute only this output (repeatable; default: every output)")
    parser.add_argument("-o", "--output", metavar="OUT.npz", help="write the outputs under their names")
    parser.add_argument("--model-name", help="which model of the file (default: the one with a train block)")
    add_backend_arguments(parser)
    parser.set_defaults(command=run)


def run(args) -> int:
    # The compiler is imported when a command runs: `nngraph --version` and `--help` do without it.
    import numpy as np

    from nngraph.api import load
    from nngraph.cli.inputs import parse_inputs
    from nngraph.files import load_weights, save_npz
    model = load(args.model, args.model_name)
    params, meta = load_weights(args.params) if args.params else (None, {})
    if params is None and any(init.kind != "value" for init in model.graph.param_init.values()):
        # (an imported ONNX model runs with the weights of its initializers: kind "value")
        print("note: no --params given; running with the seeded initial weights", file=sys.stderr)
    inputs = parse_inputs(model, args.input, args.output_name) if args.input else None
    outputs = model.run(params, inputs, args.output_name, backend=backend_from(args))
    classes = model.class_names(meta) if meta else model.class_names({"classes": _data_classes(model)})
    for name, array in outputs.items():
        print(f"{name}: {array.dtype}{list(array.shape)}")
        shown = _named(array, classes.get(name))
        print("  " + np.array2string(shown, precision=4, threshold=20, edgeitems=3).replace("\n", "\n  "))
    if args.output:
        save_npz(args.output, outputs)
        print(f"wrote {len(outputs)} outputs to {args.output}")
    return 0


def _named(array: np.ndarray, names: list[str] | None) -> np.ndarray:
    """Class indices as class names, when every index names a class."""
    if not names or array.dtype.kind not in "iu" or array.size == 0 or array.min() < 0 or array.max() >= len(names):
        return array
    import numpy as np
    return np.array(names)[array]


def _data_classes(model) -> dict:
    """Without a weights file: the label words of the training data, if it is at hand."""
    config = model.train_config
    if config is None or config.data is None or config.data.kind != "csv":
        return {}
    try:
        return model.load_data().classes
    except NNError:     # names are a nicety here; the run itself does not need the data
        return {}

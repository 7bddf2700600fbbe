"""`nngraph eval MODEL --params P [--data FILE]`: the loss and the model's metrics on any data
(default: the train block's held-out rows, or all its rows when it holds none out); for a
classifier also precision, recall and F1 of each class, by name."""
from __future__ import annotations

import json

from nngraph.cli.common import add_backend_arguments, backend_from
from nngraph.training.metrics import METRICS, format_table, format_values


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="the loss and metrics of trained weights on some data")
    parser.add_argument("model", metavar="MODEL.nn", help="the model file")
    parser.add_argument("--params", metavar="PARAMS.npz", required=True, help="weights from `nngraph train`")
    parser.add_argument("--data", metavar="FILE.csv|FILE.npz",
                        help="the data, read like the train block's (default: its held-out rows, else all its rows)")
    parser.add_argument("--metric", action="append", choices=list(METRICS), metavar="NAME",
                        help=f"report this metric (repeatable; default: the train block's `metrics`): {', '.join(METRICS)}")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--model-name", help="which model of the file (default: the one with a train block)")
    add_backend_arguments(parser)
    parser.set_defaults(command=run)


def run(args) -> int:
    # The compiler is imported when a command runs: `nngraph --version` and `--help` do without it.
    from nngraph.api import load
    from nngraph.files import load_weights
    model = load(args.model, args.model_name)
    params, meta = load_weights(args.params)
    result = model.evaluate((params, meta), args.data, backend=backend_from(args), metrics=args.metric)
    if args.json:
        print(json.dumps({"model": model.name, "rows": result.rows, "loss": result.loss} | result.metrics
                         | ({"per_class": result.per_class} if result.per_class else {})))
        return 0
    where = args.data or ("held-out rows" if model.train_config and model.train_config.holdout else "training data")
    print(f"model {model.name} on {result.rows} rows ({where}): loss {result.loss:.6g}"
          + (", " + format_values(result.metrics) if result.metrics else ""))
    if result.per_class:
        print(format_table(result.per_class))
    return 0

"""`nngraph check MODEL`: parse and shape-check every model of a file (or the one named), print a summary."""
from __future__ import annotations

from typing import TYPE_CHECKING

from nngraph.cli.common import trainable_list

if TYPE_CHECKING:
    from nngraph.api import Model


def register(subparsers) -> None:
    check = subparsers.add_parser("check", help="parse and shape-check a model; print a summary")
    check.add_argument("model", metavar="MODEL", help="a .nn file, or a .onnx model to import")
    check.add_argument("--model-name", help="check only this model of the file (default: every model)")
    check.add_argument("--trainable", metavar="NAMES", type=trainable_list,
                       help="for a .onnx model: the float initializers that are trainable parameters, comma-separated "
                            "names or patterns ('*' for all; default: weights, not literals such as ReLU6's bounds)")
    check.set_defaults(command=run)


def run(args) -> int:
    # The compiler is imported when a command runs: `nngraph --version` and `--help` do without it.
    from nngraph.api import load, model_names
    from nngraph.dsl.gc_pause import gc_paused
    names = [args.model_name] if args.model_name else model_names(args.model)
    for name in names:
        # a check builds a model and its inference graph, then drops them: with a large model the
        # cycle collector's passes over everything alive cost more than the work (see gc_pause.py)
        with gc_paused():
            model = load(args.model, name if len(names) > 1 or args.model_name else None, trainable=args.trainable)
            print(summary(model))
    return 0


def summary(model: Model) -> str:
    import numpy as np
    g = model.graph
    lines = [f"model {model.name} ({model.path}): ok"]
    for v in g.inputs:
        lines.append(f"  {'target' if v.name in g.targets else 'input '} {v.name}: {v.type}")
    total = 0
    for p in g.params:
        size = int(np.prod(p.shape))
        total += size
        lines.append(f"  param  {p.name}: {p.type}  ~ {g.param_init[p.name].kind}")
    for name, v in g.outputs.items():
        lines.append(f"  {'loss  ' if name == g.loss else 'output'} {name}: {v.type}")
    fwd = model.inference_graph()
    lines.append(f"  {len(g.params)} parameter tensors, {total} trainable numbers; "
                 f"{len(fwd.nodes)} inference nodes, {len(g.nodes)} nodes with the loss")
    if model.train_config:
        c = model.train_config
        lines.append(f"  train: {c.optimizer}, {c.epochs} epochs, batch {c.batch or 'all'}"
                     + (f", holdout {c.holdout:g}" if c.holdout else ""))
    return "\n".join(lines)

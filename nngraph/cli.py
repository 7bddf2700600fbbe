"""The `nngraph` command: check, compile, train, run, neighbours.

Exit codes: 0 ok, 1 a diagnosed error in the user's input, 2 bad command-line usage.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from nngraph import runtime
from nngraph.api import Model, load
from nngraph.diagnostics import NNError, did_you_mean
from nngraph.files import load_npz, save_npz, write_atomically
from nngraph.passes import PASS_NAMES
from nngraph.printer import format_graph
from nngraph.visualize import write_picture


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args) or 0
    except NNError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(f"nngraph: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:      # output piped into `head`: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nngraph", description="A neural-network graph compiler for .nn files.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="parse and shape-check a model; print a summary")
    check.add_argument("model", metavar="MODEL", help="a .nn file, or a .onnx model to import")
    check.add_argument("--model-name", help="which model of the file, if it has several")
    check.set_defaults(command=cmd_check)

    comp = sub.add_parser("compile", help="compile a model to textual IR (.txt)")
    comp.add_argument("model", metavar="MODEL", help="a .nn file, or a .onnx model to import")
    comp.add_argument("-o", "--output", metavar="OUT", help="output file; its suffix picks the format: "
                      ".txt (IR), .onnx, or a picture: .svg, .png, .dot")
    comp.add_argument("--grad", action="store_true", help="add d(loss)/d(param) for every parameter as outputs")
    comp.add_argument("--train", action="store_true",
                      help="one training step of the train block's optimizer (with -o OUT.onnx)")
    comp.add_argument("--params", metavar="PARAMS.npz", help="weights for an ONNX export (default: seeded init)")
    level = comp.add_mutually_exclusive_group()
    for n in (0, 1, 2):
        level.add_argument(f"-O{n}", dest="opt_level", action="store_const", const=n, help=f"optimization level {n}")
    comp.set_defaults(opt_level=1)
    comp.add_argument("--stats", action="store_true", help="print node counts")
    comp.add_argument("--print", action="store_true", help="print the IR after compiling")
    comp.add_argument("--collapse", action="store_const", const=1, default=0,
                      help="in a picture (.svg/.png/.dot), draw each layer instance as one box")
    comp.add_argument("--collapse-depth", dest="collapse", type=positive_int, metavar="D",
                      help="like --collapse, for the layer instances D levels deep (nested layers)")
    comp.add_argument("--print-after", action="append", default=[], metavar="PASS",
                      choices=PASS_NAMES + ["all"], help="print the IR after this pass (repeatable; `all`): "
                      + ", ".join(PASS_NAMES))
    comp.add_argument("--model-name")
    comp.set_defaults(command=cmd_compile)

    train = sub.add_parser("train", help="train a model from its `train` block")
    train.add_argument("model", metavar="MODEL.nn")
    train.add_argument("--epochs", type=positive_int)
    train.add_argument("--lr", type=positive_float)
    train.add_argument("--batch", type=positive_int)
    train.add_argument("--seed", type=int)
    train.add_argument("-o", "--output", metavar="PARAMS.npz", help="where to write the trained weights")
    train.add_argument("--model-name")
    add_backend_arguments(train, several_machines=True)
    train.set_defaults(command=cmd_train)

    run = sub.add_parser("run", help="run a model's inference graph")
    run.add_argument("model", metavar="MODEL", help="a .nn file, or a .onnx model to import")
    run.add_argument("--params", metavar="PARAMS.npz", help="weights from `nngraph train` (default: seeded init)")
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                     help="an input array; by default the inputs of the training data are used")
    run.add_argument("-o", "--output", metavar="OUT.npz", help="write every output under its name")
    run.add_argument("--model-name")
    add_backend_arguments(run)
    run.set_defaults(command=cmd_run)

    near = sub.add_parser("neighbours", aliases=["neighbors"],
                          help="the nearest words to a word by cosine similarity (a model trained with skipgram data)")
    near.add_argument("model", metavar="MODEL.nn")
    near.add_argument("--params", metavar="PARAMS.npz", required=True, help="weights from `nngraph train`")
    near.add_argument("--word", required=True, action="append", help="a word of the corpus (repeatable)")
    near.add_argument("-k", type=positive_int, default=5, help="how many neighbours (default 5)")
    near.add_argument("--model-name")
    near.set_defaults(command=cmd_neighbours)
    return parser


def add_backend_arguments(parser, several_machines: bool = False) -> None:
    parser.add_argument("--backend", choices=list(runtime.KNOWN), default="numpy",
                        help="what executes the model: numpy (default, built in), jax (XLA on CPU or GPU; "
                             "pip install 'nngraph[jax]'), onnxruntime (pip install 'nngraph[onnxruntime]')")
    parser.add_argument("--devices", type=device_count, metavar="N|all",
                        help="with --backend jax: split each batch over N devices (or all of them)")
    if several_machines:
        parser.add_argument("--coordinator", metavar="HOST:PORT",
                            help="with --backend jax: train on several machines; the address of process 0")
        parser.add_argument("--num-processes", type=positive_int, metavar="P", help="how many processes in all")
        parser.add_argument("--process-id", type=int, metavar="I", help="this process's number, 0 to P-1")


def backend_from(args):
    """The backend the command-line asked for, made with its options."""
    options = {}
    if args.devices is not None:
        options["devices"] = args.devices
    distributed = [getattr(args, k, None) for k in ("coordinator", "num_processes", "process_id")]
    if any(v is not None for v in distributed):
        if None in distributed:
            raise UsageError("--coordinator, --num-processes and --process-id go together")
        if not 0 <= args.process_id < args.num_processes:
            raise UsageError(f"--process-id must be between 0 and {args.num_processes - 1}")
        options |= dict(zip(("coordinator", "num_processes", "process_id"), distributed))
    if options and args.backend != "jax":
        raise UsageError(f"--{next(iter(options)).replace('_', '-')} needs --backend jax")
    return runtime.get(args.backend, **options)


class UsageError(Exception):
    """A bad combination of command-line options: exit code 2, like argparse's own errors."""


def device_count(text: str):
    return "all" if text == "all" else positive_int(text)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def cmd_check(args) -> int:
    model = load(args.model, args.model_name)
    print(summary(model))
    return 0


def summary(model: Model) -> str:
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


def cmd_compile(args) -> int:
    out = args.output
    suffix = os.path.splitext(out)[1].lower() if out else None
    if suffix not in (None, ".txt", ".dot", ".svg", ".png", ".onnx"):
        print(f"nngraph compile: error: cannot write {suffix} files; use .onnx, .txt, .dot, .svg or .png",
              file=sys.stderr)
        return 2
    if args.train and suffix != ".onnx" or args.grad and args.train:
        print("nngraph compile: error: --train exports a training step to ONNX: use it alone with -o OUT.onnx",
              file=sys.stderr)
        return 2
    if args.collapse and suffix not in (".dot", ".svg", ".png"):
        print("nngraph compile: error: --collapse is for pictures: use it with -o OUT.svg, .png or .dot",
              file=sys.stderr)
        return 2
    model = load(args.model, args.model_name)
    if suffix == ".onnx":
        params = load_npz(args.params) if args.params else None
        onnx_model = model.export_onnx(out, params, grad=args.grad, train=args.train, opt_level=args.opt_level)
        graph = onnx_model.graph
        print(f"wrote {out}: {len(graph.node)} ONNX nodes, {len(graph.input)} inputs, {len(graph.output)} outputs "
              f"(opset {onnx_model.opset_import[0].version})")
        return 0
    stats: list = []
    graph = model.compile(grad=args.grad, opt_level=args.opt_level, stats=stats,
                          observe=print_after(args.print_after))
    text = format_graph(graph)
    if args.stats:
        print(f"{'pass':<36} {'before':>7} {'after':>7} {'ms':>8}")
        for name, before, after, seconds in stats:
            print(f"{name:<36} {before:>7} {after:>7} {seconds * 1e3:>8.2f}")
        print(f"{graph.name}: {len(graph.nodes)} nodes, {len(graph.params)} params, {len(graph.outputs)} outputs "
              f"at -O{args.opt_level}{' with --grad' if args.grad else ''}")
    if args.print or not (out or args.print_after):
        print(text)
    if out and suffix == ".txt":
        write_atomically(out, (text + "\n").encode())
    elif out:
        write_picture(graph, out, collapse=args.collapse)
    return 0


def print_after(passes: list[str]):
    """An observer for the pass pipeline that dumps the IR after the chosen passes."""
    if not passes:
        return None

    def observe(name, graph):
        if name in passes or "all" in passes:
            print(f"// after {name}: {len(graph.nodes)} nodes")
            print(format_graph(graph))
    return observe


def cmd_train(args) -> int:
    model = load(args.model, args.model_name)
    backend = backend_from(args)
    result = model.train(epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed, backend=backend)
    if not getattr(backend, "is_main_process", True):
        return 0                  # several machines: process 0 reports and writes the weights
    print(f"model {model.name}: {result.summary()}")
    if args.output:
        save_npz(args.output, result.params)
        print(f"wrote {len(result.params)} parameters to {args.output}")
    return 0


def cmd_run(args) -> int:
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


def cmd_neighbours(args) -> int:
    model = load(args.model, args.model_name)
    params = load_npz(args.params)
    for word in args.word:
        found = model.neighbours(params, word, args.k)
        print(f"{word}: " + ", ".join(f"{w} {cos:.3f}" for w, cos in found))
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


if __name__ == "__main__":
    sys.exit(main())

"""`nngraph compile MODEL -o OUT`: textual IR, ONNX or a picture, with or without the gradient."""
from __future__ import annotations

import os
import sys

from nngraph.cli.common import positive_int, trainable_list
from nngraph.passes import PASS_NAMES


def register(subparsers) -> None:
    comp = subparsers.add_parser("compile", help="compile a model to textual IR (.txt)")
    comp.add_argument("model", metavar="MODEL", help="a .nn file, or a .onnx model to import")
    comp.add_argument("-o", "--output", metavar="OUT", help="output file; its suffix picks the format: "
                      ".txt (IR), .onnx, or a picture: .svg, .png, .dot, or .html (an interactive page)")
    comp.add_argument("--grad", action="store_true", help="add d(loss)/d(param) for every parameter as outputs")
    comp.add_argument("--train", action="store_true",
                      help="one training step of the train block's optimizer (with -o OUT.onnx)")
    comp.add_argument("--params", metavar="PARAMS.npz", help="weights for an ONNX export (default: seeded init); in a picture, "
                      "their statistics in tooltips")
    level = comp.add_mutually_exclusive_group()
    for n in (0, 1, 2):
        level.add_argument(f"-O{n}", dest="opt_level", action="store_const", const=n, help=f"optimization level {n}")
    comp.set_defaults(opt_level=1)
    comp.add_argument("--stats", action="store_true", help="print node counts")
    comp.add_argument("--print", action="store_true", help="print the IR after compiling")
    comp.add_argument("--collapse", action="store_const", const=1, default=None,
                      help="in a picture, draw each layer instance as one box (default: the least collapsed "
                           "picture that fits 2000 x 4000 px, repeated blocks drawn once)")
    comp.add_argument("--collapse-depth", dest="collapse", type=_depth, metavar="D",
                      help="like --collapse, for the layer instances D levels deep (nested layers); 0: every node")
    comp.add_argument("--expand", action="append", default=[], metavar="NAME",
                      help="in a picture, draw this layer instance open, e.g. net.block1 (repeatable)")
    comp.add_argument("--print-after", action="append", default=[], metavar="PASS",
                      choices=PASS_NAMES + ["all"], help="print the IR after this pass (repeatable; `all`): "
                      + ", ".join(PASS_NAMES))
    comp.add_argument("--highlight", metavar="NAME",
                      help="with --grad and a picture: draw the path from the loss to grad:NAME in bold")
    comp.add_argument("--model-name", help="which model of the file (default: the one with a train block)")
    comp.add_argument("--trainable", metavar="NAMES", type=trainable_list,
                      help="for a .onnx model: the float initializers that are trainable parameters, comma-separated "
                           "names or patterns ('*' for all; default: weights, not literals such as ReLU6's bounds)")
    comp.set_defaults(command=run)


def run(args) -> int:
    out = args.output
    suffix = os.path.splitext(out)[1].lower() if out else None
    if suffix not in (None, ".txt", ".dot", ".svg", ".png", ".html", ".onnx"):
        print(f"nngraph compile: error: cannot write {suffix} files; use .onnx, .txt, .dot, .svg, .png or .html",
              file=sys.stderr)
        return 2
    if args.train and suffix != ".onnx" or args.grad and args.train:
        print("nngraph compile: error: --train exports a training step to ONNX: use it alone with -o OUT.onnx",
              file=sys.stderr)
        return 2
    if (args.collapse is not None or args.expand) and suffix not in (".dot", ".svg", ".png", ".html"):
        print("nngraph compile: error: --collapse and --expand are for pictures: use them with -o OUT.svg, .png, "
              ".dot or .html",
              file=sys.stderr)
        return 2
    if args.highlight and not (args.grad and suffix in (".dot", ".svg", ".png", ".html")):
        print("nngraph compile: error: --highlight NAME draws a path of the gradient graph: use it with --grad "
              "and -o OUT.svg, .png or .dot", file=sys.stderr)
        return 2
    # The compiler is imported when a command runs: `nngraph --version` and `--help` do without it.
    from nngraph.api import load
    from nngraph.files import load_npz, write_atomically
    from nngraph.printer import format_graph
    model = load(args.model, args.model_name, trainable=args.trainable)
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
        highlight = None
        if args.highlight:
            from nngraph.explain.path import gradient_path
            highlight = gradient_path(graph, args.highlight)
        from nngraph.visualize import value_statistics, write_picture
        weights = value_statistics(load_npz(args.params)) if args.params else None
        write_picture(graph, out, collapse=args.collapse, expand=args.expand, stats=weights,
                      **({"highlight": highlight} if highlight else {}))
    return 0


def _depth(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def print_after(passes: list[str]):
    """An observer for the pass pipeline that dumps the IR after the chosen passes."""
    if not passes:
        return None

    def observe(name, graph):
        from nngraph.printer import format_graph
        if name in passes or "all" in passes:
            print(f"// after {name}: {len(graph.nodes)} nodes")
            print(format_graph(graph))
    return observe

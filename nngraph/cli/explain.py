"""`nngraph explain MODEL`: the derivative of the loss for each parameter, as the chain rule the
symbolic gradient graph encodes, in the model's own names; with numbers, per-step gradient norms
for recurrent models, or as an HTML page."""
from __future__ import annotations

import os

from nngraph.cli.common import UsageError


def register(subparsers) -> None:
    cmd = subparsers.add_parser("explain", help="write out the chain rule of the gradient, in the model's names")
    cmd.add_argument("model", metavar="MODEL", help="a .nn file with a loss")
    cmd.add_argument("--param", action="append", metavar="NAME",
                     help="explain this parameter's gradient (repeatable; default: every parameter)")
    cmd.add_argument("--params", metavar="P.npz",
                     help="weights (e.g. from `nngraph train -o`): evaluate every factor and the gradient-descent step")
    cmd.add_argument("--row", type=int, metavar="K",
                     help="evaluate on row K of the training data (default with --params: the whole batch)")
    cmd.add_argument("--gradient-norms", action="store_true",
                     help="for a model with a scan: the norm of d(loss)/d(state) at every time step")
    cmd.add_argument("-o", "--output", metavar="PAGE.html", help="also write the explanation as an HTML page")
    cmd.add_argument("--model-name", help="which model, when the file defines several")
    cmd.set_defaults(command=run)


def run(args) -> int:
    if args.output and os.path.splitext(args.output)[1].lower() not in (".html", ".htm"):
        raise UsageError("explain writes an HTML page: use -o PAGE.html")
    # The compiler is imported when a command runs: `nngraph --version` and `--help` do without it.
    from nngraph.api import load
    from nngraph.explain import build_report, report_text
    from nngraph.files import write_atomically
    model = load(args.model, args.model_name)
    report = build_report(model, args.param, weights=args.params, row=args.row,
                          with_numbers=args.params is not None or args.row is not None, norms=args.gradient_norms)
    print(report_text(report))
    if args.output:
        from nngraph.explain.html import page
        write_atomically(args.output, page(report).encode())
        print(f"wrote {args.output}")
    return 0

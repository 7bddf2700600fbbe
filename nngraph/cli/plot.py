"""`nngraph plot LOG -o curve.png|svg`: the loss and metric curves of a training log (from
`nngraph train --log`), drawn with matplotlib (pip install 'nngraph[plot]')."""
from __future__ import annotations

import io
import os

from nngraph.diagnostics import NNError
from nngraph.files import write_atomically
from nngraph.training.training_log import read_log

FORMATS = (".png", ".svg", ".pdf")


def register(subparsers) -> None:
    parser = subparsers.add_parser("plot", help="draw the loss and metric curves of a training log")
    parser.add_argument("log", metavar="LOG.jsonl|LOG.csv", help="a training log from `nngraph train --log`")
    parser.add_argument("-o", "--output", metavar="CURVE.png|CURVE.svg", required=True,
                        help="the picture to write (.png, .svg or .pdf)")
    parser.add_argument("--title", help="a title above the curves (default: the log's file name)")
    parser.set_defaults(command=run)


def run(args) -> int:
    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in FORMATS:
        raise NNError(f"plot draws {', '.join(FORMATS)} files, not `{suffix or args.output}`")
    records = read_log(args.log)
    data = draw(records, args.title or os.path.basename(args.log), suffix[1:])
    write_atomically(args.output, data)
    print(f"wrote {args.output}: {len(records)} epochs")
    return 0


def draw(records: list[dict], title: str, fmt: str) -> bytes:
    """Losses on the left axes (log scale when they span a factor of 20), other metrics on the right."""
    try:
        import matplotlib
    except ImportError:
        raise NNError("plot needs matplotlib, which is not installed", hint="pip install 'nngraph[plot]'") from None
    matplotlib.use("Agg")             # no display needed
    from matplotlib.figure import Figure
    epochs = [r["epoch"] for r in records]
    keys = [k for k in records[0] if k not in ("epoch", "seconds", "lr")]
    losses = [k for k in keys if k.endswith("loss")]
    others = [k for k in keys if k not in losses]
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for key in losses:
        axes.plot(epochs, [r.get(key, float("nan")) for r in records], label=key)
    values = [r[k] for r in records for k in losses if isinstance(r.get(k), (int, float)) and r[k] > 0]
    if values and max(values) > 20 * min(values):
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(title)
    lines = axes.get_legend_handles_labels()
    if others:
        right = axes.twinx()
        for i, key in enumerate(others):
            right.plot(epochs, [r.get(key, float("nan")) for r in records], label=key, linestyle="--",
                       color=f"C{i + len(losses)}")
        right.set_ylabel("metric")
        more = right.get_legend_handles_labels()
        lines = (lines[0] + more[0], lines[1] + more[1])
    axes.legend(*lines, loc="best")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()

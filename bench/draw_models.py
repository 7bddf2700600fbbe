"""Draw models: the README's docs/iris.svg and docs/rnn.svg, every model, or the size of every
model's default picture (the README's table).

    python bench/draw_models.py              # docs/iris.svg and docs/rnn.svg: forward, -O1
    python bench/draw_models.py --all out/   # every model: default, every node, --grad (-O2), and .html
    python bench/draw_models.py --sizes      # px size of every forward picture at default settings
    python bench/draw_models.py --sizes --grad   # ... and of every gradient picture (-O2)

Uses Graphviz's `dot` if installed, else graphviz-pure (installed with nngraph); graphviz-pure
writes the same bytes on every platform, so docs/iris.svg only changes when the picture does.
"""
import argparse
import glob
import os
import time
from pathlib import Path

import nngraph
from nngraph.dsl.loader import load_program
from nngraph.visualize import auto_plan, find_renderer, picture, render, svg_size, write_picture

ROOT = Path(__file__).resolve().parent.parent


def models():
    for path in sorted(glob.glob("models/*.nn")):
        for m in load_program(path).module.models:
            yield path, m.name, nngraph.load(path, m.name)


def draw_all(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path, name, model in models():
        variants = {".svg": (False, 1, None), "_full.svg": (False, 1, 0), ".html": (False, 1, None)}
        if model.graph.loss is not None:
            variants["_grad.svg"] = (True, 2, None)
        for suffix, (grad, level, collapse) in variants.items():
            target = out / f"{Path(path).stem}_{name}{suffix}"
            write_picture(model.compile(grad=grad, opt_level=level), str(target), collapse=collapse)
            print(f"wrote {target}")


def sizes(grad: bool) -> None:
    """The default picture of each model's forward graph (-O1) or gradient graph (-O2): its
    collapse depth, boxes, size in px, and the time to choose and draw it."""
    print(f"{'model':<40} {'depth':>5} {'boxes':>5} {'width':>6} {'height':>6} {'s':>5}")
    for path, name, model in models():
        if grad and model.graph.loss is None:
            continue
        graph = model.compile(grad=grad, opt_level=2 if grad else 1)
        start = time.perf_counter()
        plan = auto_plan(graph)
        dot, boxes = picture(graph, plan=plan)
        width, height = svg_size(render(dot, "svg"))
        depth = f"{plan.depth}{'' if plan.bodies else 's'}"        # s: scans drawn as one node each
        print(f"{path + ' ' + name:<40} {depth:>5} {len(boxes):>5} {width:>6} {height:>6} "
              f"{time.perf_counter() - start:>5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", metavar="DIR", type=Path, help="draw every model into DIR")
    parser.add_argument("--sizes", action="store_true", help="print the size of every default picture")
    parser.add_argument("--grad", action="store_true", help="with --sizes: of the gradient graphs")
    args = parser.parse_args()
    out = args.all.resolve() if args.all else None
    os.chdir(ROOT)          # tooltips name source files relative to the working directory
    print(f"renderer: {find_renderer()}")
    if args.sizes:
        sizes(args.grad)
        return
    if out:
        draw_all(out)
        return
    Path("docs").mkdir(exist_ok=True)
    for name in ("iris", "rnn"):
        write_picture(nngraph.load(f"models/{name}.nn").compile(opt_level=1), f"docs/{name}.svg", collapse=None)
        print(f"wrote docs/{name}.svg")


if __name__ == "__main__":
    main()

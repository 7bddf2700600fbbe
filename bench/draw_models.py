"""Draw models as SVG pictures: the README's docs/iris.svg and docs/rnn.svg, or every model.

    python bench/draw_models.py              # docs/iris.svg and docs/rnn.svg: forward, -O1
    python bench/draw_models.py --all out/   # every model: forward, --grad (-O2) and --collapse

Uses Graphviz's `dot` if installed, else graphviz-pure (installed with nngraph); graphviz-pure
writes the same bytes on every platform, so docs/iris.svg only changes when the picture does.
"""
import argparse
import glob
import os
from pathlib import Path

import nngraph
from nngraph.dsl.loader import load_program
from nngraph.visualize import find_renderer, write_picture

ROOT = Path(__file__).resolve().parent.parent


def draw_all(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(glob.glob("models/*.nn")):
        for m in load_program(path).module.models:
            model = nngraph.load(path, m.name)
            variants = {"": (False, 1, 0), "_collapsed": (False, 1, 1)}
            if model.graph.loss is not None:
                variants["_grad"] = (True, 2, 0)
            for suffix, (grad, level, collapse) in variants.items():
                target = out / f"{Path(path).stem}_{m.name}{suffix}.svg"
                write_picture(model.compile(grad=grad, opt_level=level), str(target), collapse=collapse)
                print(f"wrote {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", metavar="DIR", type=Path, help="draw every model into DIR")
    args = parser.parse_args()
    out = args.all.resolve() if args.all else None
    os.chdir(ROOT)          # tooltips name source files relative to the working directory
    print(f"renderer: {find_renderer()}")
    if out:
        draw_all(out)
        return
    Path("docs").mkdir(exist_ok=True)
    for name in ("iris", "rnn"):
        write_picture(nngraph.load(f"models/{name}.nn").compile(opt_level=1), f"docs/{name}.svg")
        print(f"wrote docs/{name}.svg")


if __name__ == "__main__":
    main()

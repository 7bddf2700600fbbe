"""Print, for every model in models/, forward and --grad node counts at -O0 and -O2 (a README table).

    python bench/node_counts.py
"""
import glob

import nngraph
from nngraph.dsl.loader import load_program


def main() -> None:
    print("| model | forward -O0 | forward -O2 | --grad -O0 | --grad -O2 |")
    print("|---|---:|---:|---:|---:|")
    for path in sorted(glob.glob("models/*.nn")):
        for m in load_program(path).module.models:
            model = nngraph.load(path, m.name)
            counts = [len(model.compile(grad=g, opt_level=o).nodes) for g in (False, True) for o in (0, 2)]
            print(f"| {path} `{m.name}` | " + " | ".join(map(str, counts)) + " |")


if __name__ == "__main__":
    main()

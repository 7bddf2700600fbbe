"""Print, for every model in models/, forward and --grad node counts at -O0, -O1 and -O2 (a README
table); the nodes of scan bodies count too.

    python bench/node_counts.py
"""
import glob

import nngraph
from nngraph.dsl.loader import load_program
from nngraph.passes import count_nodes

LEVELS = (0, 1, 2)


def main() -> None:
    heads = [f"{'forward' if not g else '--grad'} -O{o}" for g in (False, True) for o in LEVELS]
    print("| model | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(heads))
    for path in sorted(glob.glob("models/*.nn")):
        for m in load_program(path).module.models:
            model = nngraph.load(path, m.name)
            # a model without a loss (text generation) has no gradient graph: "-"
            counts = [count_nodes(model.compile(grad=g, opt_level=o)) if model.graph.loss or not g else "-"
                      for g in (False, True) for o in LEVELS]
            print(f"| {path} `{m.name}` | " + " | ".join(map(str, counts)) + " |")


if __name__ == "__main__":
    main()

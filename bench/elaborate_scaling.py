"""How `nngraph check` time grows with the number of statements: it should grow linearly.

    python bench/elaborate_scaling.py [--sizes 2500 5000 10000 20000]

Each model is a chain of N statements mixing layer calls, arithmetic and builtins; the time is
load (parse + elaborate) + the inference graph, then the whole `nngraph check FILE` command run
in-process (its own copy of the file, so nothing is cached). CPU time is printed too: on a shared
machine it is the fairer figure.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time

from nngraph.api import load
from nngraph.cli import main as nngraph_command


def model_text(statements: int) -> str:
    lines = ["model chain {", "    input x: [N, 8]", "    h0 = x"]
    kinds = ["    h{i} = tanh(h{j} * 1.01 + 0.5)", "    h{i} = h{j} + relu(h{j})",
             "    h{i} = dense[8](h{j})", "    h{i} = reshape(h{j}, [-1, 8])"]
    for i in range(1, statements):
        lines.append(kinds[i % len(kinds)].format(i=i, j=i - 1))
    lines += [f"    output y = h{statements - 1}", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2500, 5000, 10000, 20000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            path = os.path.join(folder, f"chain{n}.nn")
            with open(path, "w") as f:
                f.write(model_text(n))
            start, cpu = time.perf_counter(), time.process_time()
            model = load(path)
            loaded = time.perf_counter()
            graph = model.inference_graph()
            done = time.perf_counter()
            print(f"{n:>6} statements: load {loaded - start:6.2f} s, inference graph {done - loaded:6.2f} s, "
                  f"total {done - start:6.2f} s, CPU {time.process_time() - cpu:6.2f} s ({len(graph.nodes)} nodes)",
                  flush=True)
            copy = shutil.copy(path, os.path.join(folder, f"check{n}.nn"))
            start, cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(io.StringIO()):
                code = nngraph_command(["check", copy])
            print(f"{'':>6} nngraph check: {time.perf_counter() - start:6.2f} s, CPU {time.process_time() - cpu:6.2f} s"
                  f" (exit {code})", flush=True)


if __name__ == "__main__":
    main()

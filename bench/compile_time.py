"""How long compiling each model in models/ takes: cold (the first compile in a fresh process, which
reads the standard library) and warm (later compiles; the library is read once per process).

    python bench/compile_time.py [--repeats 9] [--grad]

A compile is `nngraph.load(path, name)` (parse, elaborate, shape-check) then `Model.compile()`
(the optimized inference graph; with --grad the training graph). Imports are not counted: see
`nngraph check` start-up in the README. Medians of the repeats, CPU time beside wall time: on a
shared machine CPU time is the fairer figure. Cold times come from one fresh process per repeat.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

ONE_COMPILE = """
import json, sys, time
import nngraph, nngraph.api, nngraph.passes, nngraph.autodiff    # imports are not timed (nngraph's are lazy)
path, name, grad = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
wall, cpu = time.perf_counter(), time.process_time()
nngraph.load(path, name).compile(grad=grad)
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""


def first_models() -> list[tuple[str, str]]:
    from nngraph.dsl.loader import load_program
    return [(path, load_program(path).module.models[0].name) for path in sorted(glob.glob("models/*.nn"))]


def cold(path: str, name: str, grad: bool, repeats: int) -> tuple[float, float]:
    runs = []
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", ONE_COMPILE, path, name, "1" if grad else "0"],
                             capture_output=True, text=True, check=True, env=env)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def warm(path: str, name: str, grad: bool, repeats: int) -> tuple[float, float]:
    import nngraph
    nngraph.load(path, name).compile(grad=grad)            # the first one is the cold one
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        nngraph.load(path, name).compile(grad=grad)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--cold-repeats", type=int, default=3, help="fresh processes per model (each ~1 s of imports)")
    ap.add_argument("--grad", action="store_true", help="compile the training graph instead")
    args = ap.parse_args()
    print(f"{'model':<34} {'cold wall':>10} {'cold CPU':>10} {'warm wall':>10} {'warm CPU':>10}   (ms, medians)")
    worst = (0.0, "")
    for path, name in first_models():
        cold_wall, cold_cpu = cold(path, name, args.grad, args.cold_repeats)
        warm_wall, warm_cpu = warm(path, name, args.grad, args.repeats)
        worst = max(worst, (warm_cpu, f"{path} ({name})"))
        print(f"{path + ' (' + name + ')':<34} {cold_wall * 1e3:>10.1f} {cold_cpu * 1e3:>10.1f} "
              f"{warm_wall * 1e3:>10.1f} {warm_cpu * 1e3:>10.1f}", flush=True)
    print(f"slowest warm compile (CPU): {worst[1]} {worst[0] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()

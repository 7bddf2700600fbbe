"""Fuzz `nngraph check` with mutated .nn files and mutated ONNX files, for longer than the test suite
does (tests/fuzz/test_fuzz.py runs the same mutations), and print the counts.

    python bench/fuzz.py --nn 100000 --onnx 1000 [--seconds 10] [--start 0] [--report fuzz-failures.txt]

One worker process (the machine is shared), restarted after a hang it cannot interrupt; each case
runs `nngraph check` in-process with an alarm after --seconds and an address-space limit (--memory-gb)
so a memory blow-up shows as one. Failures are written to --report with their seeds: a seed
reproduces its mutant (tests/fuzz/mutations.py: nn_case(seed), or run_case).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz import mutations  # noqa: E402

_state = {}


def _init(workdir: str, memory_gb: float, kinds: tuple[str, ...]):
    import resource
    limit = int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _state["workdir"] = mutations.prepare_workdir(Path(workdir))
    _state["bases"] = mutations.onnx_bases(_state["workdir"]) if "onnx" in kinds else {}


def _case(kind: str, seed: int, seconds: int):
    return mutations.run_case(kind, seed, _state["workdir"], _state["bases"], seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nn", type=int, default=1000, help="how many mutated .nn files")
    ap.add_argument("--onnx", type=int, default=100, help="how many mutated ONNX files")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--seconds", type=int, default=10, help="time limit of one case")
    ap.add_argument("--memory-gb", type=float, default=3.0, help="address-space limit of the worker")
    ap.add_argument("--report", default="fuzz-failures.txt", help="where failures are written")
    ap.add_argument("--every", type=int, default=1000, help="print the counts every this many cases")
    args = ap.parse_args()
    kinds = tuple(k for k in ("nn", "onnx") if getattr(args, k))
    jobs = [("nn", args.start + i) for i in range(args.nn)] + [("onnx", args.start + i) for i in range(args.onnx)]
    counts = {k: Counter() for k in kinds}
    workdir = tempfile.mkdtemp(prefix="nngraph-fuzz-")
    ctx = mp.get_context("fork")
    pool = ctx.Pool(1, _init, (workdir, args.memory_gb, kinds))
    started = time.time()
    with open(args.report, "w", encoding="utf-8") as report:
        for n, (kind, seed) in enumerate(jobs, 1):
            try:
                outcome, what, detail = pool.apply_async(_case, (kind, seed, args.seconds)).get(args.seconds + 60)
            except mp.TimeoutError:
                pool.terminate()
                pool = ctx.Pool(1, _init, (workdir, args.memory_gb, kinds))
                outcome, what, detail = "timeout", f"{kind} seed {seed}", "the worker did not answer; restarted"
            counts[kind]["files"] += 1
            counts[kind][outcome] += 1
            if outcome not in ("ok", "diagnostic"):
                report.write(f"=== {outcome}: {what}\n{detail}\n")
                report.flush()
            if n % args.every == 0 or n == len(jobs):
                print(_summary(counts, time.time() - started), flush=True)
    pool.terminate()
    bad = sum(c[o] for c in counts.values() for o in ("traceback", "timeout", "memory"))
    print(f"command: python bench/fuzz.py --nn {args.nn} --onnx {args.onnx} --start {args.start} "
          f"--seconds {args.seconds}; failures in {args.report}")
    return 1 if bad else 0


def _summary(counts, elapsed: float) -> str:
    parts = []
    for kind, c in counts.items():
        parts.append(f"{kind}: {c['files']} files tried, {c['ok']} ok, {c['diagnostic']} diagnostics, "
                     f"{c['traceback']} tracebacks, {c['timeout']} timeouts, {c['memory']} memory blow-ups")
    return f"[{elapsed:.0f} s] " + "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())

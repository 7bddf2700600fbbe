"""Fuzz `nngraph check` with mutated .nn files and mutated ONNX files, for longer than the test suite
does (tests/fuzz/test_fuzz.py runs the same mutations), and print the counts.

    nice -n 19 python bench/fuzz.py --nn 100000 --onnx 1000 [--seconds 10] [--start 0] [--report fuzz-failures.txt]

One worker process (the machine is shared), forked once and reused for case after case: it imports
nngraph and exports the ONNX bases once, so a case costs what `nngraph check` costs. Each case runs
`nngraph --debug check FILE` in-process (tests/fuzz/mutations.py: check_file) under a CPU-time alarm
(--seconds) and an address-space limit (--memory-gb, so a memory blow-up ends in a MemoryError that
shows as one). A worker that dies, or does not answer within --wall-seconds, is counted as a crash or
a hang and replaced. A mutant whose bytes equal an earlier one's is skipped: only distinct files
count. Failures are written to --report with their seeds: a seed reproduces its mutant
(mutations.make_case(kind, seed) or run_case), and `--replay REPORT` runs the failed seeds again.
"""
from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import json
import multiprocessing as mp
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz import mutations  # noqa: E402

FAILURES = ("traceback", "timeout", "memory", "crash")
RSS_RESTART_BYTES = 2 * 2**30     # a worker grown this big (caches, fragmentation) is replaced; not a failure


def _worker(conn, workdir: str, memory_gb: float, kinds: tuple[str, ...], seconds: int, seen: set[str],
            long_copies: tuple[int, ...]) -> None:
    """Runs cases sent over `conn` until it is sent None; answers (outcome, what, detail, digest, cpu, rss).
    `seen`: the digests of the mutants already run (a replaced worker inherits them from the parent)."""
    mutations.LONG_FILE_COPIES = long_copies
    limit = int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    folder = mutations.prepare_workdir(Path(workdir))
    from nngraph import cli
    # `main` builds its argparse parser (nine commands) on every call: about a sixth of a typical case's time.
    # One parser serves every case of this worker; parsing arguments does not change it.
    cli.build_parser = functools.lru_cache(maxsize=1)(cli.build_parser)
    bases = mutations.onnx_bases(folder) if "onnx" in kinds else {}
    mutations.run_cli(["check", str(mutations.ROOT / "models" / "iris.nn")])   # warm the parser and imports
    gc.collect()
    gc.freeze()      # what is loaded now lives as long as the worker: collections need not walk it
    conn.send("ready")
    while (job := conn.recv()) is not None:
        kind, seed = job
        model, data = mutations.make_case(kind, seed, bases)
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen:
            conn.send(("duplicate", f"{kind} seed {seed} from {model}", "", digest, 0.0, 0))
            continue
        seen.add(digest)
        path = folder / f"case-{seed % 4}.{kind}"
        path.write_bytes(data)
        cpu = time.process_time()
        outcome, detail = mutations.check_file(path, seconds)
        cpu = time.process_time() - cpu
        rss = int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()
        conn.send((outcome, f"{kind} seed {seed} from {model}", detail, digest, cpu, rss))


class Worker:
    def __init__(self, args, kinds, workdir):
        self.args, self.kinds, self.workdir = args, kinds, workdir
        self.ctx = mp.get_context("fork")
        self.seen: set[str] = set()
        self.start()

    def start(self):
        for _ in range(10):
            if self._try_start():
                return
            time.sleep(30)      # (the code may be half-edited by someone at this moment: try again soon)
        raise SystemExit("the fuzz worker did not start")

    def _try_start(self) -> bool:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, daemon=True, args=self.worker_args(child))
        self.proc.start()
        child.close()
        try:
            if self.conn.poll(600) and self.conn.recv() == "ready":
                return True
        except EOFError:
            pass
        self.stop()
        return False

    def worker_args(self, child) -> tuple:
        a = self.args
        return child, self.workdir, a.memory_gb, self.kinds, a.seconds, self.seen, a.long_copies

    def stop(self):
        self.proc.kill()
        self.proc.join()
        self.conn.close()

    def run(self, kind: str, seed: int) -> tuple:
        """One case; a worker that dies or hangs is replaced and the case counted as a crash or timeout."""
        what = f"{kind} seed {seed}"
        try:
            self.conn.send((kind, seed))
            if self.conn.poll(self.args.wall_seconds):
                result = self.conn.recv()
                self.seen.add(result[3])
                return result
            result = ("timeout", what, f"no answer within {self.args.wall_seconds} s of wall time", None, None, 0)
        except (EOFError, OSError, BrokenPipeError):
            result = ("crash", what, f"the worker died (exit code {self.proc.exitcode})", None, None, 0)
        self.stop()
        self.start()
        return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nn", type=int, default=1000, help="how many distinct mutated .nn files")
    ap.add_argument("--onnx", type=int, default=100, help="how many distinct mutated ONNX files")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--seconds", type=int, default=10, help="CPU-time limit of one case")
    ap.add_argument("--wall-seconds", type=int, default=600, help="wall-clock limit of one case (a hang that sleeps)")
    ap.add_argument("--memory-gb", type=float, default=3.0, help="address-space limit of the worker")
    ap.add_argument("--report", default="fuzz-failures.txt", help="where failures are written")
    ap.add_argument("--summary", help="also write the final counts here as JSON")
    ap.add_argument("--every", type=int, default=1000, help="print the counts every this many cases")
    ap.add_argument("--long-copies", type=lambda s: tuple(int(n) for n in s.split(",")), default=mutations.LONG_FILE_COPIES,
                    help="how many times the long-file mutation repeats a statement (comma-separated choices; "
                         "default %(default)s, as the suite's fuzz test)")
    ap.add_argument("--fresh-every", type=int, default=5000,
                    help="replace the worker after this many cases: it then runs the code as it is now")
    ap.add_argument("--minutes", type=float, help="stop after this many minutes of wall time and print the counts reached")
    ap.add_argument("--replay", metavar="REPORT", help="run only the seeds that failed in this report")
    args = ap.parse_args()
    if args.replay:
        found = re.findall(r"^=== \w+: (nn|onnx) seed (\d+)", Path(args.replay).read_text(encoding="utf-8"), re.M)
        plan = {"nn": [int(s) for k, s in found if k == "nn"], "onnx": [int(s) for k, s in found if k == "onnx"]}
    else:
        plan = {"nn": args.nn, "onnx": args.onnx}
    kinds = tuple(k for k in ("nn", "onnx") if plan[k])
    counts = {k: Counter() for k in kinds}
    cpu = {k: [] for k in kinds}
    slowest: list[tuple[float, str]] = []
    worker = Worker(args, kinds, tempfile.mkdtemp(prefix="nngraph-fuzz-"))
    started, n = time.time(), 0
    with open(args.report, "w", encoding="utf-8") as report:
        for kind in sorted(kinds, key=("onnx", "nn").index):     # the smaller set first
            seeds = iter(plan[kind]) if isinstance(plan[kind], list) else _count_from(args.start)
            target = len(plan[kind]) if isinstance(plan[kind], list) else plan[kind]
            while counts[kind]["files"] < target and not (args.minutes and time.time() - started > 60 * args.minutes):
                seed = next(seeds, None)
                if seed is None:
                    break
                outcome, what, detail, digest, seconds, rss = worker.run(kind, seed)
                if outcome == "duplicate":
                    counts[kind]["duplicates skipped"] += 1
                    continue
                counts[kind]["files"] += 1
                counts[kind][outcome] += 1
                if seconds is not None:
                    cpu[kind].append(seconds)
                    slowest = sorted(slowest + [(seconds, what)], reverse=True)[:10]
                if outcome in FAILURES:
                    report.write(f"=== {outcome}: {what}\n{detail}\n")
                    report.flush()
                if rss > RSS_RESTART_BYTES or counts[kind]["files"] % args.fresh_every == 0:
                    worker.stop()
                    worker.start()
                n += 1
                if n % args.every == 0:
                    print(_summary(counts, cpu, time.time() - started), flush=True)
    worker.stop()
    print(_summary(counts, cpu, time.time() - started))
    print("slowest cases (CPU s): " + "; ".join(f"{what} {s:.1f}" for s, what in slowest))
    command = " ".join(["python", "bench/fuzz.py"] + sys.argv[1:])
    print(f"command: nice -n 19 {command}; failures in {args.report}")
    if args.summary:
        Path(args.summary).write_text(json.dumps({"command": command, "counts": counts, "cpu_seconds": {
            k: _stats(v) for k, v in cpu.items()}, "slowest": slowest}, indent=1), encoding="utf-8")
    bad = sum(c[o] for c in counts.values() for o in FAILURES)
    return 1 if bad else 0


def _count_from(start: int):
    while True:
        yield start
        start += 1


def _stats(times: list[float]) -> dict:
    if not times:
        return {}
    ordered = sorted(times)
    return {"total": round(sum(times), 1), "median": round(statistics.median(times), 4),
            "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 3), "max": round(ordered[-1], 2)}


def _summary(counts, cpu, elapsed: float) -> str:
    parts = []
    for kind, c in counts.items():
        parts.append(f"{kind}: {c['files']} distinct files ({c['duplicates skipped']} duplicates skipped), {c['ok']} ok, "
                     f"{c['diagnostic']} diagnostics, {c['traceback']} tracebacks, {c['timeout']} hangs, "
                     f"{c['memory']} memory blow-ups, {c['crash']} crashes, {sum(cpu[kind]):.0f} CPU s")
    return f"[{elapsed:.0f} s] " + "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())

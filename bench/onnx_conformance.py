"""ONNX's own node tests against the importer and the NumPy runtime.

    python bench/onnx_conformance.py            # Markdown tables for the README
    python bench/onnx_conformance.py --readme   # and write them into README.md (that block only)
    python bench/onnx_conformance.py --failures # also list every case that fails

The onnx package generates its node test cases in memory (`collect_testcases`). A case is in scope
when every op in its model is one the importer handles (`HANDLERS`). Each in-scope case is
imported and run with the NumPy backend (`nngraph.runtime.numpy`), and its outputs compared with the expected ones
at the case's rtol/atol. A case either passes, or is rejected by the importer with an
`UnsupportedONNX` error (an op/dtype/attribute combination nngraph does not support: these are
listed by reason), or fails (a bug). Inputs that nngraph must know at compile time (a Reshape's
shape, ReduceSum's axes fed as graph inputs) are frozen to the case's data with `constants=`;
such cases are counted as passed, and also in the "frozen" column.

tests/test_onnx_conformance.py runs the same classification and requires zero failures.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nngraph.onnx.context import UnsupportedONNX  # noqa: E402
from nngraph.onnx.handlers.registry import HANDLERS  # noqa: E402
from nngraph.onnx.importer import import_onnx  # noqa: E402
from nngraph.runtime.numpy.executor import Plan

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
REJECTED_HEADING = "Rejected combinations (op: reason — cases):"


@dataclass
class Outcome:
    name: str
    ops: list[str]
    status: str                      # passed, rejected, failed
    frozen: list[str] = field(default_factory=list)
    reasons: list[tuple[str, str]] = field(default_factory=list)   # (op, reason) when rejected
    message: str = ""


def collect_cases():
    """Every node test case onnx can generate (a few seconds; numpy warnings from its generators muted)."""
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return collect_testcases()


def op_types(case) -> list[str]:
    return sorted({n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                   for n in case.model.graph.node})


def in_scope(case) -> bool:
    return case.model is not None and bool(case.data_sets) and set(op_types(case)) <= set(HANDLERS)


def run_case(case) -> Outcome:
    """Import, freeze the inputs the importer needs known (if any), run, compare."""
    model = case.model
    ops = op_types(case)
    input_names = [vi.name for vi in model.graph.input]
    data_sets = [([as_array(a) for a in inputs], [as_array(a) for a in outputs]) for inputs, outputs in case.data_sets]
    first_inputs = dict(zip(input_names, data_sets[0][0]))
    frozen: dict = {}
    try:
        for _ in range(len(input_names) + 1):
            try:
                graph, weights = import_onnx(model, constants=frozen, name=case.name)
                break
            except UnsupportedONNX as err:
                # a shape or axes fed as a graph input: freeze it to the case's data and retry
                # (freezing one input can reveal the next, e.g. Dropout's training_mode then ratio)
                if not err.static_inputs:
                    raise
                frozen |= {n: first_inputs[n] for n in err.static_inputs}
    except UnsupportedONNX as err:
        return Outcome(case.name, ops, "rejected", list(frozen), sorted({(p.op, p.reason) for p in err.problems}),
                       err.message)
    except Exception as err:      # a crash is a failure: every problem must be an NNError
        return Outcome(case.name, ops, "failed", list(frozen), message=f"import crashed: {type(err).__name__}: {err}")
    plan = Plan(graph)
    fed = {v.name for v in graph.inputs}
    for inputs, expected in data_sets:
        feeds = {n: a for n, a in zip(input_names, inputs) if n in fed}
        if any(not np.array_equal(np.asarray(a), np.asarray(frozen[n])) for n, a in zip(input_names, inputs)
               if n in frozen):
            return Outcome(case.name, ops, "failed", list(frozen), message="data sets differ in a frozen input")
        try:
            with np.errstate(all="ignore"):
                got = plan.run(feeds, weights)
        except Exception as err:
            return Outcome(case.name, ops, "failed", list(frozen), message=f"run failed: {type(err).__name__}: {err}")
        names = [vi.name for vi in model.graph.output]
        for name, want in zip(names, expected):
            have, want = np.asarray(got[name]), np.asarray(want)
            if have.shape != want.shape or have.dtype != want.dtype:
                return Outcome(case.name, ops, "failed", list(frozen),
                               message=f"output {name}: {have.dtype}{list(have.shape)} != expected "
                                       f"{want.dtype}{list(want.shape)}")
            try:
                np.testing.assert_allclose(have, want, rtol=case.rtol, atol=case.atol)
            except AssertionError as err:
                return Outcome(case.name, ops, "failed", list(frozen), message=f"output {name}: {err}")
    return Outcome(case.name, ops, "passed", list(frozen))


def as_array(data) -> np.ndarray:
    """Some generators store a TensorProto rather than an array (the test files hold protos anyway)."""
    return numpy_helper.to_array(data) if isinstance(data, onnx.TensorProto) else np.asarray(data)


def run_all(cases) -> list[Outcome]:
    return [run_case(c) for c in cases if in_scope(c)]


def per_operator(outcomes: list[Outcome]) -> dict[str, Counter]:
    """For each supported op: how the in-scope cases that use it ended."""
    table: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        for op in o.ops:
            table[op][o.status] += 1
            table[op]["total"] += 1
            table[op]["frozen"] += bool(o.frozen) and o.status == "passed"
    return table


def markdown(outcomes: list[Outcome], total_cases: int) -> str:
    table = per_operator(outcomes)
    status = Counter(o.status for o in outcomes)
    lines = [f"{len(outcomes)} of the {total_cases} node test cases of onnx use only ops the importer "
             f"handles: {status['passed']} pass, {status['rejected']} are rejected with an error naming the "
             f"unsupported combination, {status['failed']} fail.",
             "",
             "| ONNX op | in-scope cases | passed | of which frozen inputs | rejected | failed |",
             "|---|---:|---:|---:|---:|---:|"]
    for op in sorted(table):
        c = table[op]
        lines.append(f"| {op} | {c['total']} | {c['passed']} | {c['frozen']} | {c['rejected']} | {c['failed']} |")
    unused = sorted(set(HANDLERS) - set(table))
    if unused:
        lines += ["", f"Handled but used by no in-scope case: {', '.join(unused)}."]
    rejected: dict[tuple[str, str], list[str]] = defaultdict(list)
    for o in outcomes:
        if o.status == "rejected":
            for op, reason in o.reasons:
                rejected[(op, reason)].append(o.name)
    lines += ["", REJECTED_HEADING, ""]
    for (op, reason), names in sorted(rejected.items()):
        shown = ", ".join(f"`{n}`" for n in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        lines.append(f"- {op}: {reason} — {len(names)}: {shown}")
    return "\n".join(lines)


def write_readme(table: str, path: str = README) -> None:
    """Put `table` where the previous one is in the README: from its summary line to the end of the
    list of rejected combinations. The rest of the file is left as it is (others edit it too)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = re.search(r"^\d+ of the \d+ node test cases of onnx", text, re.M)
    heading = text.find(REJECTED_HEADING, start.start()) if start else -1
    if heading < 0:
        raise SystemExit(f"no conformance table in {path} to replace")
    end = text.find("\n\n", heading + len(REJECTED_HEADING) + 2)
    end = len(text.rstrip("\n")) if end < 0 else end
    from nngraph.files import write_atomically
    write_atomically(path, (text[:start.start()] + table + text[end:]).encode("utf-8"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="list failing cases with their messages")
    parser.add_argument("--readme", action="store_true", help="write the tables into README.md")
    args = parser.parse_args(argv)
    cases = collect_cases()
    outcomes = run_all(cases)
    table = markdown(outcomes, len(cases))
    print(table)
    if args.readme:
        write_readme(table)
    if args.failures:
        for o in outcomes:
            if o.status == "failed":
                print(f"\nFAILED {o.name} ({', '.join(o.ops)}): {o.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

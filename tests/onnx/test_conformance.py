"""ONNX's own node test cases (generated in memory by the onnx package) through the importer and
the NumPy runtime. For every supported op, every case whose model uses only supported ops must
pass at the case's rtol/atol, or be rejected by the importer with an NNError naming an
op/dtype/attribute combination that the README lists as not supported. The classification lives
in bench/onnx_conformance.py, which also writes the README's table."""
import os
import sys
from collections import defaultdict

import pytest

from nngraph.diagnostics import NNError
from nngraph.onnx.context import UnsupportedONNX
from nngraph.onnx.handlers.registry import HANDLERS
from nngraph.onnx.importer import import_onnx
from tests.helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, "bench"))
import onnx_conformance as conformance  # noqa: E402


@pytest.fixture(scope="module")
def cases():
    """Generating the 1884 cases takes a few seconds: once per module."""
    return conformance.collect_cases()


@pytest.fixture(scope="module")
def outcomes(cases):
    return {o.name: o for o in conformance.run_all(cases)}


@pytest.fixture(scope="module")
def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_the_suite_is_there_and_hundreds_of_cases_are_in_scope(cases, outcomes):
    assert len(cases) > 1500
    assert len(outcomes) > 700
    assert sum(o.status == "passed" for o in outcomes.values()) > 450


@pytest.mark.parametrize("op", sorted(HANDLERS))
def test_every_case_of_a_supported_op_passes_or_is_a_documented_rejection(op, outcomes, readme):
    mine = [o for o in outcomes.values() if op in o.ops]
    failed = [f"{o.name}: {o.message}" for o in mine if o.status == "failed"]
    assert not failed, "\n".join(failed)
    undocumented = sorted({f"{o_op}: {reason}" for o in mine if o.status == "rejected" for o_op, reason in o.reasons
                           if f"{o_op}: {reason}" not in readme})
    assert not undocumented, f"rejections missing from the README (run bench/onnx_conformance.py): {undocumented}"


def test_rejected_cases_raise_an_nnerror_listing_every_problem(cases, outcomes):
    """One case per distinct reason, imported again: an NNError (UnsupportedONNX), not a crash."""
    assert issubclass(UnsupportedONNX, NNError)
    by_reason = defaultdict(list)
    for o in outcomes.values():
        if o.status == "rejected":
            by_reason[tuple(o.reasons)].append(o.name)
    by_name = {c.name: c for c in cases}
    assert by_reason
    for reasons, names in by_reason.items():
        case = by_name[names[0]]
        frozen = {n: conformance.as_array(a) for n, a in zip([i.name for i in case.model.graph.input],
                                                             case.data_sets[0][0]) if n in outcomes[case.name].frozen}
        with pytest.raises(NNError) as info:
            import_onnx(case.model, constants=frozen)
        for op, reason in reasons:
            assert f"{op}: {reason}" in info.value.message


def test_readme_table_is_the_scripts_output(cases, outcomes, readme):
    table = conformance.markdown(list(outcomes.values()), len(cases))
    assert table in readme, "the README's ONNX conformance table is stale: run python bench/onnx_conformance.py --readme"

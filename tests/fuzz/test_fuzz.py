"""Fuzzing `nngraph check` with grammar-aware mutations of the shipped models and of the ONNX files
they export: every mutant ends in exit 0 or a diagnostic (exit 1), never a traceback (or the
internal-error exit 2), never a hang. About a minute in all. Derandomized, so every run checks the
same mutants and a failure reproduces; bench/fuzz.py explores new seeds for longer."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import mutations

SECONDS = 60      # CPU seconds for one case: a hang, not a slow machine or a big (linear) mutant


@pytest.fixture
def shorter_long_files(monkeypatch):
    monkeypatch.setattr(mutations, "LONG_FILE_COPIES", (100, 500, 1500))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return mutations.prepare_workdir(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def onnx_bases(workdir):
    return mutations.onnx_bases(workdir)     # the same files bench/fuzz.py mutates, so its seeds replay here


def assert_no_failure(outcome: str, detail: str, what: str):
    assert outcome in ("ok", "diagnostic"), f"{outcome} for {what}:\n{detail}"


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(model=st.sampled_from(mutations.MODELS), steps=st.lists(st.sampled_from(mutations.NN_MUTATIONS), min_size=1,
                                                               max_size=3), seed=st.integers(0, 2**32 - 1))
def test_mutated_models_give_diagnostics(workdir, shorter_long_files, model, steps, seed):
    rng = random.Random(seed)
    toks = mutations.tokens(model.read_text(encoding="utf-8"))
    for step in steps:
        toks = step(toks, rng)
    text = "".join(toks).replace('"SELF"', f'"{model.name}"')
    path = workdir / "case.nn"
    path.write_text(text, encoding="utf-8")
    outcome, detail = mutations.check_file(path, SECONDS)
    assert_no_failure(outcome, detail, f"{model.name} with {[s.__name__ for s in steps]}, seed {seed}")


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_onnx_files_give_diagnostics(workdir, onnx_bases, seed):
    rng = random.Random(seed)
    name = rng.choice(sorted(onnx_bases))
    path = workdir / "case.onnx"
    path.write_bytes(mutations.mutate_onnx(onnx_bases[name], rng))
    outcome, detail = mutations.check_file(path, SECONDS)
    assert_no_failure(outcome, detail, f"{name}.onnx mutated with seed {seed}")


@pytest.mark.parametrize("kind, seed", [("nn", 24), ("nn", 1223), ("nn", 200014), ("nn", 201163),
                                        ("nn", 2018106), ("nn", 2037693), ("onnx", 100067), ("onnx", 100870)])
def test_seeds_that_once_failed(workdir, onnx_bases, kind, seed):
    """Cases bench/fuzz.py found: a 74.5 GiB arange; 5,000 repeated settings, layer calls or
    embeddings in a file of several models (quadratic, or parsed once per model); initializers
    whose data type lost its data; cross_entropy of a number; `loss = ...` inside a scan body
    (tests/hardening/test_fuzz_findings.py has each reduced to a few lines)."""
    outcome, what, detail = mutations.run_case(kind, seed, workdir, onnx_bases, SECONDS)
    assert_no_failure(outcome, detail, what)

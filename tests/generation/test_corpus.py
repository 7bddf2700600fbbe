"""The real-text corpus: the standard library's docstrings, made deterministically from the
installed Python's source files (models/data/make_corpus.py), cut into training windows for
models/gpt_docs.nn (make_docs_chars.py)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import nngraph
from tests.helpers import ROOT

DATA = ROOT / "models" / "data"


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def docs() -> str:
    return script("make_corpus").stdlib_docstrings()


def test_the_corpus_is_a_megabyte_of_english_made_the_same_way_twice(docs):
    assert len(docs) >= 1_000_000 and docs.isascii()
    assert docs == script("make_corpus").stdlib_docstrings()
    words = docs.split()
    for common in ("the", "Return", "of", "is", "a"):
        assert words.count(common) > 1000, common
    assert len(docs.split("\n\n")) > 6000                   # thousands of docstrings, not a few long ones


def test_windows_are_the_text_and_the_next_character(docs, tmp_path, monkeypatch):
    make = script("make_docs_chars")
    monkeypatch.setattr(make, "__file__", str(tmp_path / "make_docs_chars.py"))
    (tmp_path / "docstrings.txt").write_text(docs[:20000], encoding="utf-8")
    arrays = make.arrays()
    vocab = "".join(chr(c) for c in arrays["vocab"])
    assert vocab == "".join(sorted(set(docs[:20000])))
    text = "".join(vocab[i] for i in arrays["text"].reshape(-1))
    assert text == docs[:len(text)] and arrays["text"].shape[1] == make.WINDOW == 288
    np.testing.assert_array_equal(arrays["next"][:, :-1], arrays["text"][:, 1:])
    np.testing.assert_array_equal(arrays["next"][:-1, -1], arrays["text"][1:, 0])


def test_the_docstring_gpt_reads_its_windows_and_decodes_with_its_cache():
    gpt = nngraph.load(str(ROOT / "models" / "gpt_docs.nn"), "gpt")
    assert {v.name: v.type.shape for v in gpt.graph.inputs} == {"text": ("N", 288), "next": ("N", 288)}
    params = gpt.init(0)
    assert 120_000 < sum(v.size for v in params.values()) < 140_000
    for name in ("prefill", "decode_step", "generate_cached", "next_scores"):
        assert sorted(p.name for p in nngraph.load(str(ROOT / "models" / "gpt_docs.nn"), name).graph.params) == sorted(params)

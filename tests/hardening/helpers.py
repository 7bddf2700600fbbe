"""Shared by the hardening tests: load a source and get its diagnostic."""
from __future__ import annotations

import pytest

import nngraph


def diagnostic(tmp_path, source: str, name: str = "m.nn") -> nngraph.NNError:
    path = tmp_path / name
    path.write_text(source)
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(path))
    return info.value


def where(err: nngraph.NNError) -> tuple[int, int]:
    assert err.span is not None, err.message
    return err.span.line, err.span.column

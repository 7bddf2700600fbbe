"""Pytest fixtures shared by every test folder, and nothing else: helper functions live in
tests/helpers.py and the op case table in tests/ops/cases.py, imported as modules."""
from __future__ import annotations

import pytest

from tests.helpers import ROOT, assert_close, central_difference, directional_difference, typed_run


@pytest.fixture(scope="session", autouse=True)
def generated_model_data():
    """models/data/docs_chars.npz (models/gpt_docs.nn's data) is too large to ship; it is made in
    seconds from the shipped docstrings.txt, as a user makes it: make_docs_chars.py."""
    if not (ROOT / "models/data/docs_chars.npz").exists():
        import runpy
        runpy.run_path(str(ROOT / "models/data/make_docs_chars.py"), run_name="__main__")


@pytest.fixture
def fd():
    """The finite-difference helpers as a namespace."""
    class FD:
        central = staticmethod(central_difference)
        directional = staticmethod(directional_difference)
        close = staticmethod(assert_close)
    return FD


@pytest.fixture(name="typed_run")
def typed_run_fixture():
    return typed_run

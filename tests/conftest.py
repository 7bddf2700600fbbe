"""Pytest fixtures shared by every test folder, and nothing else: helper functions live in
tests/helpers.py and the op case table in tests/ops/cases.py, imported as modules."""
from __future__ import annotations

import pytest

from tests.helpers import assert_close, central_difference, directional_difference, typed_run


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

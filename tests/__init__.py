"""The test suite, a package so that its modules have unique names (tests.ops.test_gradients, ...)
and share code by ordinary imports:

    from tests.helpers import central_difference, typed_run, ...      # helper functions
    from tests.ops.cases import all_cases, build, feeds_for, ...      # the op case table

Every folder below has an __init__.py too; pyproject.toml puts the repository root on sys.path
(`pythonpath = ["."]`). Test modules import only tests.helpers, tests.ops.cases and conftest
fixtures, never another test module.
"""

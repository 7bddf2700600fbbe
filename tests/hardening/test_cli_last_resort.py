"""Any exception that is not a diagnosed user error is one "internal error" line and exit 2; the
traceback only with --debug."""
import pytest

from nngraph.cli import check
from tests.fuzz.mutations import run_cli


@pytest.fixture
def broken_check(monkeypatch, tmp_path):
    def explode(args):
        raise ZeroDivisionError("a bug of ours")
    monkeypatch.setattr(check, "summary", lambda model: explode(None))
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N, 2]\n    output y = x\n}\n")
    return str(path)


def test_internal_error_is_one_line_and_exit_2(broken_check):
    code, err = run_cli(["check", broken_check])
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("nngraph: internal error (ZeroDivisionError): this is a bug in nngraph, not in your input; "
                          "please report it")
    assert "--debug" in err and "Traceback" not in err


def test_debug_shows_the_traceback(broken_check):
    code, err = run_cli(["--debug", "check", broken_check])
    assert code == 2
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError: a bug of ours" in err
    assert err.rstrip().splitlines()[-1].startswith("nngraph: internal error (ZeroDivisionError)")


def test_user_errors_still_exit_1(tmp_path):
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    output y = q\n}\n")
    code, err = run_cli(["check", str(path)])
    assert code == 1 and f"{path}:2:16: error: unknown name `q`" in err


def test_out_of_memory_is_said_plainly(monkeypatch, tmp_path):
    def no_memory(model):
        raise MemoryError()
    monkeypatch.setattr(check, "summary", no_memory)
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N, 2]\n    output y = x\n}\n")
    code, err = run_cli(["check", str(path)])
    assert code == 1
    assert err.strip() == ("nngraph: error: out of memory (MemoryError): the model or its data need more memory "
                           "than this machine gives; try a smaller batch or smaller inputs")

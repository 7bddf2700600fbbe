"""Training on several machines with the JAX backend (runtime/jax/distributed.py): two processes on
this machine, joined through a coordinator on 127.0.0.1 and all-reducing over gloo, train as one
process does on the same global batches, and only process 0 reports and writes the weights."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import nngraph  # noqa: E402
from nngraph.diagnostics import NNError  # noqa: E402
from nngraph.files import load_weights  # noqa: E402
from nngraph.runtime import get  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240                    # seconds for a whole run; a process left waiting for a peer is killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(devices_each: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    if devices_each > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices_each}"
    return env


def train_in_processes(tmp_path: Path, model: str, args: list[str], processes: int = 2,
                       devices_each: int = 1) -> list[tuple[int, str, str]]:
    """`nngraph train` in `processes` processes at once, process i writing weights to w{i}.npz:
    each one's (exit code, stdout, stderr). Output goes to files, so no pipe can fill and stall."""
    port, procs = free_port(), []
    for i in range(processes):
        out, err = open(tmp_path / f"out{i}.txt", "w"), open(tmp_path / f"err{i}.txt", "w")
        command = [sys.executable, "-m", "nngraph.cli", "train", f"models/{model}", "--backend", "jax",
                   "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes),
                   "--process-id", str(i), *args, "-o", str(tmp_path / f"w{i}.npz")]
        with out, err:
            procs.append(subprocess.Popen(command, cwd=ROOT, env=environment(devices_each), stdout=out, stderr=err))
    deadline = time.monotonic() + TIMEOUT
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = [(p.returncode, (tmp_path / f"out{i}.txt").read_text(), (tmp_path / f"err{i}.txt").read_text())
               for i, p in enumerate(procs)]
    for i, (code, out, err) in enumerate(results):
        assert code == 0, f"process {i} exited with {code} (killed after {TIMEOUT} s if negative)\n{out}\n{err}"
    return results


# (model, command-line arguments, devices per process)
RUNS = [("iris.nn", ["--epochs", "3", "--batch", "16"], 1),
        # 4 global devices: batches of 16 and 8 split in four, the 30 held-out rows replicated
        ("iris.nn", ["--epochs", "3", "--batch", "16", "--devices", "2"], 2),
        # convolution, pooling, flatten; its 10 images a batch, 5 for each process
        ("cnn_xo.nn", ["--epochs", "5"], 1)]


@pytest.mark.parametrize("model, args, devices_each", RUNS, ids=["iris", "iris-2x2-devices", "cnn_xo"])
def test_two_processes_train_as_one_does(tmp_path, model, args, devices_each):
    (_, out0, _), (_, out1, _) = train_in_processes(tmp_path, model, args, devices_each=devices_each)
    name = model.removesuffix(".nn")
    assert f"model {name}: trained on" in out0 and "wrote" in out0
    assert f"model {name}" not in out1 and "wrote" not in out1       # (gloo prints a line of its own)
    assert not (tmp_path / "w1.npz").exists()
    epochs = int(args[args.index("--epochs") + 1])
    batch = int(args[args.index("--batch") + 1]) if "--batch" in args else None
    # the same global batches in one process on the NumPy reference backend
    one = nngraph.load(str(ROOT / "models" / model)).train(epochs=epochs, batch=batch, backend="numpy",
                                                           progress=False)
    two, _meta = load_weights(str(tmp_path / "w0.npz"))
    assert sorted(two) == sorted(one.params)
    for k in one.params:
        np.testing.assert_allclose(two[k], one.params[k], rtol=1e-5, atol=1e-6, err_msg=k)
    reported = float(re.search(r"final training loss (\S+),", out0).group(1))    # (evaluated on all rows)
    assert reported == pytest.approx(one.train.loss, rel=1e-4)


JOIN_TWICE = """
import socket
from nngraph.diagnostics import NNError
from nngraph.runtime import get
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{s.getsockname()[1]}"
first = get("jax", coordinator=address, num_processes=1, process_id=0)
again = get("jax", coordinator=address, num_processes=1, process_id=0)        # the same run: nothing to do
try:
    get("jax", coordinator=address, num_processes=2, process_id=1)
except NNError as err:
    print("second run:", err)
print("main:", first.is_main_process, again.is_main_process)
"""


def test_a_process_joins_one_run_once():
    done = subprocess.run([sys.executable, "-c", JOIN_TWICE], cwd=ROOT, env=environment(1), capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "second run: this process has already joined a jax.distributed run (coordinator 127.0.0.1:" in done.stdout
    assert "main: True True" in done.stdout


def test_joining_after_jax_has_started_is_a_diagnostic():
    jax.devices()                 # (this test process has started jax's backend: too late to join a run)
    with pytest.raises(NNError, match="cannot join the jax.distributed run at 127.0.0.1:9"):
        get("jax", coordinator="127.0.0.1:9", num_processes=2, process_id=0)
    with pytest.raises(NNError, match="need a coordinator"):
        get("jax", num_processes=2, process_id=0)
    assert get("jax").is_main_process and get("jax", devices=1).is_main_process

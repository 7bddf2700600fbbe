"""How many threads NumPy's BLAS (matrix products) uses, chosen deliberately instead of left to
the library, which starts one per core whatever else runs: on a busy 2-core machine a CNN trained
in 37-58 s with the default against 6-7.5 s with one thread, every thread fighting the other
processes for the same cores.

The count, in order of precedence:
- `nngraph.runtime.get("numpy", threads=N)` (or `set_threads(N)`);
- the environment variable NNGRAPH_THREADS: a number, or `auto`;
- `auto` (the default): the cores idle now, os.cpu_count() minus the one-minute load average,
  rounded down, at least 1, and no more than OPENBLAS_NUM_THREADS or OMP_NUM_THREADS when set.
  A busy machine gets 1 thread, an idle 8-core machine 8.

Small products need no rule of their own: OpenBLAS runs a GEMM below about 64^3 multiply-adds
on one thread whatever the setting, and nngraph's elementwise kernels are single-threaded NumPy.
The setting reaches only the BLAS that NumPy loaded (threadpoolctl), not PyTorch's or XLA's.
"""
from __future__ import annotations

import os

from nngraph.diagnostics import NNError

ENV = "NNGRAPH_THREADS"
_applied: int | None = None


def idle_cores() -> int:
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):          # no load average (Windows): assume an idle machine
        load = 0.0
    limits = [int(v) for v in (os.environ.get(k, "") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))
              if v.isdigit() and int(v) > 0]
    return max(1, min([cores, int(cores - load)] + limits))


def chosen(threads: int | str | None = None) -> int:
    """The thread count that `threads` (None: the environment, else auto) means."""
    setting = threads if threads is not None else os.environ.get(ENV, "auto")
    if setting == "auto":
        return idle_cores()
    try:
        count = int(setting)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        source = "threads" if threads is not None else ENV
        raise NNError(f"{source} must be a positive number of threads or `auto`, got {setting!r}")
    return count


def set_threads(threads: int | str | None = None) -> int:
    """Limit NumPy's BLAS to the chosen count (see the module's docstring); returns the count."""
    global _applied
    count = chosen(threads)
    if count != _applied:
        import numpy  # noqa: F401  (its BLAS must be loaded to be found)
        from threadpoolctl import ThreadpoolController  # (its library scan costs ~20 ms: only when used)
        for lib in ThreadpoolController().lib_controllers:
            if lib.user_api == "blas" and "numpy" in lib.filepath:
                lib.set_num_threads(count)
        _applied = count
    return count

"""Files nngraph writes and reads: atomic writes, and .npz weights without pickle."""
from __future__ import annotations

import os
import tempfile

import numpy as np

from nngraph.diagnostics import NNError


def write_atomically(path: str, data: bytes | None = None, writer=None) -> None:
    """A crash mid-write leaves the old file, never a truncated one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f) if writer else f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    write_atomically(path, writer=lambda f: np.savez(f, **arrays))


def load_npz(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise NNError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (ValueError, OSError) as err:
        raise NNError(f"cannot read {path} as an .npz weights file: {err}") from None

"""Files nngraph writes and reads: atomic writes, and .npz weights without pickle."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import zipfile
import zlib

import numpy as np

from nngraph.diagnostics import NNError


def write_atomically(path: str, data: bytes | None = None, writer=None) -> None:
    """A crash mid-write leaves the old file, never a truncated one."""
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TMP_PREFIX}{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f) if writer else f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())    # mkstemp makes 0600; a written file follows the user's umask
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


TMP_PREFIX = ".tmp-"
_STALE_SECONDS = 3600      # a temporary file without a process id is stale after this


def remove_stale_temporaries(folder: str) -> None:
    """Temporary files a killed writer left in `folder` (`.tmp-PID-...` of a process that is gone,
    or an older `.tmp-...` over an hour old) are removed: the next write cleans up after a crash."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(TMP_PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(TMP_PREFIX):].split("-", 1)[0]
        full = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            if pid.isdigit() and "-" in name[len(TMP_PREFIX):]:
                if _alive(int(pid)):
                    continue
            elif time.time() - os.path.getmtime(full) < _STALE_SECONDS:
                continue
            os.unlink(full)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # it exists but belongs to someone else
        return True
    return True


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    write_atomically(path, writer=lambda f: np.savez(f, **arrays))


# Arrays larger than this are refused before anything is allocated (a header can declare any shape).
MAX_ARRAY_BYTES = int(os.environ.get("NNGRAPH_MAX_ARRAY_BYTES", 8 * 2**30))


def load_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, each checked against the bytes the file really holds before it
    is allocated; a truncated, empty or corrupt file is a diagnostic naming it."""
    if not os.path.exists(path):
        raise NNError(f"no such file: {path}")
    if not os.path.isfile(path):
        raise NNError(f"{path} is not a regular file, so not an .npz archive")
    if os.path.getsize(path) == 0:
        raise NNError(f"{path} is empty, not an .npz archive")
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {}
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with archive.open(info) as f:
                    arrays[name] = _read_npy(f, info.file_size, f"{path}: array `{name}`")
            return arrays
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as err:
        raise NNError(f"cannot read {path} as an .npz archive: {err or type(err).__name__} "
                      "(truncated or corrupt?)") from None


def load_npy(path: str, what: str = "") -> np.ndarray:
    """One .npy array, its header checked against the file's size before anything is allocated."""
    label = f"{what}{': ' if what else ''}{path}"
    if not os.path.isfile(path):
        raise NNError(f"{label}: {'no such file' if not os.path.exists(path) else 'not a regular file'}")
    try:
        with open(path, "rb") as f:
            return _read_npy(f, os.path.getsize(path), label)
    except OSError as err:
        raise NNError(f"cannot read {label}: {err.strerror or err}") from None


def _read_npy(f, size: int, where: str) -> np.ndarray:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if header is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = header(f)
    except (ValueError, EOFError, SyntaxError, TypeError) as err:
        raise NNError(f"{where} is not a valid .npy array: {err}") from None
    if dtype.hasobject:
        raise NNError(f"cannot read {where}: it holds Python objects, which nngraph never loads (pickle)")
    count = 1
    for d in shape:
        count *= int(d)
    wanted = count * dtype.itemsize
    held = size - f.tell()
    if wanted != held:
        raise NNError(f"{where}: its header declares {dtype}{list(shape)} ({wanted} bytes) but the file holds "
                      f"{held} bytes (truncated or corrupt)")
    if wanted > MAX_ARRAY_BYTES:
        raise NNError(f"{where}: {wanted} bytes is larger than the limit of {MAX_ARRAY_BYTES} bytes",
                      hint="raise it with the environment variable NNGRAPH_MAX_ARRAY_BYTES")
    data = f.read(wanted)
    if len(data) != wanted:
        raise NNError(f"{where}: the file ends after {len(data)} of {wanted} bytes (truncated)")
    array = np.frombuffer(data, dtype=dtype, count=count).copy()
    return array.reshape(shape, order="F" if fortran else "C")


def _umask() -> int:
    mask = os.umask(0)      # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


# ---------------------------------------------------------------- weights with metadata
META_KEY = "__nngraph_meta__"     # a reserved array name: a JSON document as uint8 bytes (no pickle)


def save_weights(path: str, params: dict[str, np.ndarray], meta: dict | None = None) -> None:
    """Parameters plus metadata (model name, class names of the labels, ...) in one .npz that
    `np.load(path, allow_pickle=False)` reads."""
    arrays = dict(params)
    if meta:
        arrays[META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    save_npz(path, arrays)


def load_weights(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """(parameters, metadata) of a weights file; files without metadata give {}."""
    return split_meta(load_npz(path), path)


def split_meta(arrays: dict[str, np.ndarray], path: str = "the weights file") -> tuple[dict[str, np.ndarray], dict]:
    arrays = dict(arrays)
    raw = arrays.pop(META_KEY, None)
    if raw is None:
        return arrays, {}
    try:
        meta = json.loads(np.asarray(raw, np.uint8).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as err:
        raise NNError(f"{path}: the metadata `{META_KEY}` is not JSON: {err}") from None
    if not isinstance(meta, dict):
        raise NNError(f"{path}: the metadata `{META_KEY}` is not a JSON object")
    return arrays, meta

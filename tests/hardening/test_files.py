"""Weights files: truncated, empty or corrupt files and lying .npy headers are diagnostics naming
the file; temporary files never outlive a failed write, and stale ones go at the next write."""
import io
import os
import zipfile

import numpy as np
import pytest

from nngraph import NNError, files


def saved(tmp_path):
    path = tmp_path / "w.npz"
    files.save_npz(str(path), {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3)})
    return path


def error_of(path) -> str:
    with pytest.raises(NNError) as info:
        files.load_npz(str(path))
    return info.value.message


def test_round_trip(tmp_path):
    arrays = files.load_npz(str(saved(tmp_path)))
    assert arrays["w"].tolist() == [[0, 1, 2], [3, 4, 5]] and arrays["w"].flags.writeable


def test_empty_file(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    assert error_of(tmp_path / "e.npz") == f"{tmp_path}/e.npz is empty, not an .npz archive"


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file(tmp_path, keep):
    data = saved(tmp_path).read_bytes()
    (tmp_path / "t.npz").write_bytes(data[:int(len(data) * keep)])
    message = error_of(tmp_path / "t.npz")
    assert message.startswith(f"cannot read {tmp_path}/t.npz as an .npz archive: ")


def test_corrupt_bytes(tmp_path):
    data = bytearray(saved(tmp_path).read_bytes())
    data[100:140] = b"\x00" * 40
    (tmp_path / "c.npz").write_bytes(bytes(data))
    message = error_of(tmp_path / "c.npz")
    assert str(tmp_path / "c.npz") in message


def npz_with_member(tmp_path, member: bytes):
    path = tmp_path / "h.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("w.npy", member)
    return path


def npy_bytes(array, shape=None) -> bytes:
    """An .npy file holding `array`'s bytes under a header that declares `shape` (default: its own)."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
              "shape": array.shape if shape is None else shape}
    np.lib.format.write_array_header_1_0(buf, header)
    if array.dtype.hasobject:
        return buf.getvalue() + b"pickled objects would follow"
    return buf.getvalue() + array.tobytes()


def test_npy_header_declaring_a_huge_array(tmp_path):
    member = npy_bytes(np.zeros(3), (10000000000000,))
    message = error_of(npz_with_member(tmp_path, member))
    assert message == (f"{tmp_path}/h.npz: array `w`: its header declares float64[10000000000000] "
                       "(80000000000000 bytes) but the file holds 24 bytes (truncated or corrupt)")


def test_npy_file_with_a_lying_header(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(npy_bytes(np.zeros(3), (99999999999,)))
    with pytest.raises(NNError) as info:
        files.load_npy(str(path), "--input x")
    assert info.value.message == (f"--input x: {path}: its header declares float64[99999999999] "
                                  "(799999999992 bytes) but the file holds 24 bytes (truncated or corrupt)")


def test_object_arrays_are_refused(tmp_path):
    member = npy_bytes(np.array([1, "a"], dtype=object))
    assert "holds Python objects" in error_of(npz_with_member(tmp_path, member))


def test_a_failed_write_leaves_no_temporary_file_and_keeps_the_old_file(tmp_path):
    path = saved(tmp_path)
    before = path.read_bytes()

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")
    with pytest.raises(OSError):
        files.write_atomically(str(path), writer=broken)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["w.npz"]


def test_stale_temporary_files_are_cleaned_at_the_next_write(tmp_path):
    dead = tmp_path / ".tmp-999999999-abc"        # a process id no system has
    dead.write_bytes(b"x" * 1000)
    mine = tmp_path / f".tmp-{os.getpid()}-live"   # a write in progress in a live process
    mine.write_bytes(b"x")
    old = tmp_path / ".tmp-oldstyle"
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    recent = tmp_path / ".tmp-recent"
    recent.write_bytes(b"x")
    files.write_atomically(str(tmp_path / "out.bin"), b"data")
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, recent.name, "out.bin"])

"""The standard library is read once per process, again when a library file changes, and safely
from several threads at once."""
from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

from nngraph.dsl import loader


def test_the_standard_library_is_read_once(tmp_path, monkeypatch):
    reads = []
    real_read = loader.read_source
    monkeypatch.setattr(loader, "read_source", lambda path, span=None: reads.append(path) or real_read(path, span))
    model = tmp_path / "m.nn"
    model.write_text("model m {\n input x: [N, 4]\n output y = dense[2](x)\n}\n")
    first = loader.load_program(str(model))
    stdlib_reads = [p for p in reads if p.startswith(str(loader.STDLIB))]
    second = loader.load_program(str(model))
    assert [p for p in reads if p.startswith(str(loader.STDLIB))] == stdlib_reads   # not read again
    assert second.names["dense"] is first.names["dense"]
    assert second.names is not first.names        # each load gets its own dict of names


def test_an_edited_library_file_is_read_again(tmp_path, monkeypatch):
    lib = tmp_path / "stdlib"
    shutil.copytree(loader.STDLIB, lib)
    monkeypatch.setattr(loader, "STDLIB", lib)
    model = tmp_path / "m.nn"
    model.write_text("model m {\n input x: [N, 4]\n output y = twice(x)\n}\n")
    (lib / "extra.nn").write_text("layer twice(x) { return x * 2 }\n")
    before = loader.load_program(str(model)).names["twice"]
    (lib / "extra.nn").write_text("layer twice(x) { return x * 3 }\n")
    stat = os.stat(lib / "extra.nn")
    os.utime(lib / "extra.nn", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))   # a later mtime, whatever the clock
    after = loader.load_program(str(model)).names["twice"]
    assert after is not before
    assert after.defn.body[0].values[0].right.value == 3


def test_threads_loading_at_once_agree(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "_stdlib_cache", {})
    paths = ["models/iris.nn", "models/transformer.nn", "models/rnn.nn", "models/gpt.nn"] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        programs = list(pool.map(loader.load_program, paths))
    for path, program in zip(paths, programs):
        alone = loader.load_program(path)
        assert program.module == alone.module
        assert sorted(program.names) == sorted(alone.names)
        assert program.names["dense"] is alone.names["dense"]      # one library for every thread

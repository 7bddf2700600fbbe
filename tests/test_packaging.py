"""The package list in pyproject.toml names every package in the source folders, so an installed
(not editable) nngraph has all of its modules and data files."""
from __future__ import annotations

import tomllib

from tests.helpers import ROOT

FOLDERS = {"nngraph": "nngraph", "dsl": "nngraph.dsl", "runtime": "nngraph.runtime"}


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package,) + parts))
    assert found == set(config["packages"]), {"missing": sorted(found - set(config["packages"])),
                                              "listed but absent": sorted(set(config["packages"]) - found)}

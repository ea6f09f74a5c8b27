"""The Examples sections of the public functions' docstrings run as written (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pairmi.api",
    "pairmi.nulls",
    "pairmi.settings",
    "pairmi.compare",
    "pairmi.stats",
    "pairmi.stream",
    "pairmi.edges",
    "pairmi.corpus",
    "pairmi.texts",
    "pairmi.extract",
    "pairmi.topk",
]


@pytest.mark.parametrize("name", MODULES + ["pairmi.plot", "pairmi.dask.samples"])
def test_docstring_examples(name):
    if name == "pairmi.plot":
        pytest.importorskip("matplotlib")
    if name == "pairmi.dask.samples":
        pytest.importorskip("dask.array")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

"""The examples in the docstrings of the pure functions run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "wgan_lip.ot",
    "wgan_lip.layers.orthogonal",
    "wgan_lip.layers.lipschitz",
    "wgan_lip.layers.aol",
    "wgan_lip.layers.sll",
    "wgan_lip.robust.margins",
    "wgan_lip.robust.certify",
    "wgan_lip.layers.export",
    "wgan_lip.models",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0

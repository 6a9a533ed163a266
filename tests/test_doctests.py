"""The examples in the docstrings run and print what they claim (every module that defines a
public name: ``tests/test_docstrings.py`` requires them to be listed here)."""

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
    "wgan_lip.layers.activations",
    "wgan_lip.layers.conv",
    "wgan_lip.layers.spectral",
    "wgan_lip.layers.stacked",
    "wgan_lip.layers.cayley",
    "wgan_lip.layers.registry",
    "wgan_lip.networks",
    "wgan_lip.threads",
    "wgan_lip.work_threads",
    "wgan_lip.critic",
    "wgan_lip.data.precision",
    "wgan_lip.data.synthetic",
    "wgan_lip.w1.loss",
    "wgan_lip.w1.callbacks",
    "wgan_lip.w1.race",
    "wgan_lip.w1.critics",
    "wgan_lip.w1.data",
    "wgan_lip.w1.estimate",
    "wgan_lip.w1.module",
    "wgan_lip.gan.architecture",
    "wgan_lip.gan.critics",
    "wgan_lip.gan.data",
    "wgan_lip.gan.features",
    "wgan_lip.gan.metrics",
    "wgan_lip.gan.module",
    "wgan_lip.gan.refine",
    "wgan_lip.robust.attacks",
    "wgan_lip.robust.data",
    "wgan_lip.robust.module",
    # modules without __all__: their own public functions and classes
    "wgan_lip.errors",
    "wgan_lip.checkpoints",
    "wgan_lip.jsonio",
    "wgan_lip.options",
    "wgan_lip.paths",
    "wgan_lip.penalties",
    "wgan_lip.plotting",
    "wgan_lip.constraints",
    "wgan_lip.data.rows",
    "wgan_lip.data.samplers",
    "wgan_lip.data.sources",
    "wgan_lip.data.vision",
    "wgan_lip.w1.data",
    "wgan_lip.w1.family",
    "wgan_lip.w1.two_sample",
    "wgan_lip.w1.plot",
    "wgan_lip.gan.images",
    "wgan_lip.robust.checkpoint",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0

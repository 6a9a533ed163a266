"""The layer contract, run over every layer that ``wgan_lip.layers`` exports.

A new layer is one row of ``ROWS``: how to build a small instance, the shape of one input
sample and whether it is orthogonal (bound 1 and norm preserving). The test fails for a
layer in ``__all__`` without a row.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import wgan_lip.layers as layers
from wgan_lip.layers import export_plain, lipschitz_bound
from wgan_lip.layers.lipschitz import _RULES, own_method


@dataclass(frozen=True)
class Row:
    make: Callable[[], nn.Module]
    sample_shape: tuple[int, ...]  # one input sample, without the batch dimension
    orthogonal: bool  # bound within 1% of 1
    wrong_shape: tuple[int, ...] | None  # a batch the layer must refuse with ValueError
    # the map depends on the input size: bounded only with lipschitz_bound(input_shape=...)
    needs_shape: bool = False


ROWS: dict[type, Row] = {
    layers.BjorckLinear: Row(lambda: layers.BjorckLinear(6, 6), (6,), True, (3, 5)),
    layers.SpectralLinear: Row(lambda: layers.SpectralLinear(6, 4), (6,), False, (3, 5)),
    layers.BCOPConv2d: Row(lambda: layers.BCOPConv2d(2, 2, 3), (2, 5, 5), True, (3, 3, 5, 5)),
    layers.SpectralConv2d: Row(
        lambda: layers.SpectralConv2d(2, 3, 3), (2, 5, 5), False, (3, 4, 5, 5)
    ),
    layers.AOLLinear: Row(lambda: layers.AOLLinear(6, 4), (6,), False, (3, 5)),
    layers.AOLConv2d: Row(lambda: layers.AOLConv2d(2, 3, 3), (2, 5, 5), False, (3, 3, 5, 5)),
    layers.SLLLinear: Row(lambda: layers.SLLLinear(6, 5), (6,), False, (3, 5)),
    layers.SLLConv2d: Row(lambda: layers.SLLConv2d(2, 3, 3), (2, 5, 5), False, (3, 3, 5, 5)),
    layers.CayleyConv2d: Row(
        lambda: layers.CayleyConv2d(2, 3, 3), (2, 5, 4), True, (3, 3, 5, 5), needs_shape=True
    ),
    layers.FourierConv2d: Row(
        lambda: layers.FourierConv2d(torch.randn(3, 3, 2, 2), 3, 2, torch.zeros(2)),
        (3, 4, 6),
        False,
        (3, 2, 4, 6),
        needs_shape=True,
    ),
    layers.GroupSort: Row(lambda: layers.GroupSort(3), (6,), True, (3, 5)),
    layers.MaxMin: Row(lambda: layers.MaxMin(), (6,), True, (3, 5)),
    layers.FullSort: Row(lambda: layers.FullSort(), (6,), True, (3,)),
    layers.InvertibleDownsample: Row(
        lambda: layers.InvertibleDownsample(2), (2, 4, 4), True, (3, 2, 5, 5)
    ),
    layers.L2NormPool2d: Row(lambda: layers.L2NormPool2d(2), (2, 4, 4), False, (3, 4, 4)),
    layers.StackedLinear: Row(lambda: layers.StackedLinear(3, 6, 4), (3, 6), True, (3, 2, 6)),
}
# Exported modules that are not layers on activations (the Björck parametrization maps a
# weight to a weight): checked by tests/layers/test_orthogonal.py.
NOT_LAYERS = {layers.Orthonormal}


def _exported_modules() -> list[type]:
    return [
        obj
        for name in layers.__all__
        if inspect.isclass(obj := getattr(layers, name)) and issubclass(obj, nn.Module)
    ]


def test_every_exported_layer_has_a_row():
    missing = set(_exported_modules()) - set(ROWS) - NOT_LAYERS
    assert not missing, f"add a row to ROWS for {sorted(c.__name__ for c in missing)}"


def test_lipschitz_and_export_have_no_rules_for_our_layers():
    """Our layers own their bound and export (methods): the registries hold torch types."""
    ours = [c.__qualname__ for c in _RULES if c.__module__.startswith("wgan_lip")]
    assert not ours, f"move these rules into the layers' lipschitz_bound() methods: {ours}"


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda c: c.__name__)
def test_layer_owns_its_bound_and_export_and_keeps_them_sound(cls):
    m = ROWS[cls].make()
    assert own_method(m, "lipschitz_bound") is not None
    if any(True for _ in m.parameters()):  # a layer with weights exports itself
        assert own_method(m, "export_plain") is not None
    # A subclass that computes something else may not inherit the certificate or the export.
    base = type(m)
    doubled = ROWS[cls].make()
    doubled.__class__ = type(
        "Doubled", (base,), {"forward": lambda self, x: 2 * base.forward(self, x)}
    )
    with pytest.raises(TypeError, match="overrides forward"):
        lipschitz_bound(doubled)
    if own_method(m, "export_plain") is not None:  # others are kept as they are
        with pytest.raises(TypeError, match="overrides forward"):
            export_plain(doubled)
    m.register_forward_hook(lambda mod, args, out: 2 * out)
    with pytest.raises(TypeError, match="hooks"):
        lipschitz_bound(m)


def _instance(cls: type) -> nn.Module:
    torch.manual_seed(0)
    m = ROWS[cls].make().double()
    with torch.no_grad():  # bias and raw weights away from their initial values
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def _exact_norm(m: nn.Module, shape: tuple[int, ...], points: int = 4) -> float:
    """The largest Jacobian spectral norm of one sample's map at a few random points (the
    Lipschitz constant itself for a linear map)."""
    m.eval()
    best = 0.0
    for _ in range(points):
        x = torch.randn(1, *shape, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(
            lambda v: m(v.reshape(1, *shape)).flatten(), x.flatten()
        )
        best = max(best, float(torch.linalg.matrix_norm(jac, ord=2)))
    return best


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda c: c.__name__)
def test_bound_covers_the_exact_norm(cls):
    m = _instance(cls)
    row = ROWS[cls]
    if row.needs_shape:
        with pytest.raises(TypeError, match=f"{cls.__name__} .*pass input_shape"):
            lipschitz_bound(m)
        bound = lipschitz_bound(m, input_shape=row.sample_shape)
    else:
        bound = lipschitz_bound(m)
    exact = _exact_norm(m, ROWS[cls].sample_shape)
    assert bound >= exact * (1 - 1e-9), (bound, exact)
    if ROWS[cls].orthogonal:
        assert bound == pytest.approx(1.0, rel=0.01)


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda c: c.__name__)
def test_export_is_plain_torch_with_the_same_outputs(cls):
    m = _instance(cls).eval()
    x = torch.randn(3, *ROWS[cls].sample_shape, dtype=torch.float64)
    expected = m(x)  # a layer that adapts to the input size (SpectralConv2d) has seen it
    plain = export_plain(m)
    assert not any(hasattr(sub, "parametrizations") for sub in plain.modules())
    ours = [sub for sub in plain.modules() if type(sub).__module__.startswith("wgan_lip")]
    assert not any(list(sub.parameters(recurse=False)) for sub in ours)  # weights: plain torch
    torch.testing.assert_close(plain(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda c: c.__name__)
def test_state_dict_round_trip_and_float64(cls):
    m = _instance(cls).eval()
    fresh = ROWS[cls].make().double().eval()
    fresh.load_state_dict(m.state_dict())
    x = torch.randn(3, *ROWS[cls].sample_shape, dtype=torch.float64)
    out = m(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(fresh(x), out, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda c: c.__name__)
def test_bad_inputs_are_clear_errors(cls):
    m = ROWS[cls].make()
    with pytest.raises(TypeError, match=cls.__name__):
        m(torch.ones(3, *ROWS[cls].sample_shape, dtype=torch.long))
    if ROWS[cls].wrong_shape is not None:
        with pytest.raises(ValueError, match=cls.__name__):
            m(torch.randn(*ROWS[cls].wrong_shape))

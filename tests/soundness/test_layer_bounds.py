"""Soundness of every layer's certificate, as computed in its own dtype.

For random layers of every type ``wgan_lip.layers`` exports (a new layer without a factory
here fails :func:`test_every_exported_layer_has_a_factory`), random shapes and options and
each dtype the layer accepts on a CPU, ``lipschitz_bound`` must be at least

* the ratio ``|f(a) - f(b)| / |a - b|`` a short gradient-ascent attack finds on the layer
  itself, evaluated in its dtype (pairs kept a quarter of their and their outputs' norm
  apart: closer pairs only measure rounding noise, which no relative term covers; see
  :mod:`wgan_lip.layers._rounding`), and
* the exact Jacobian spectral norm of ``export_plain(layer)`` computed in float64;

computing it must leave the state dict bitwise unchanged, and ``export_plain`` must equal
the layer after every kind of in-place weight edit. The cases users reported are pinned at
the end.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

import wgan_lip.layers as layers
from tests.layers.test_contract import ROWS as CONTRACT_ROWS
from wgan_lip.layers import NonFiniteWeightsError, export_plain, lipschitz_bound

SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FULL = (torch.float32, torch.float64)
HALF = (torch.float16, torch.bfloat16)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These layers are tiny: with several threads on a busy machine each small convolution
    waits for the others (16 ms instead of 0.1 ms), so the module runs on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class Case:
    """A drawn layer: the module (in float64), one input sample's shape and whether its
    bound needs that shape (the map depends on the input size)."""

    module: nn.Module
    shape: tuple[int, ...]
    needs_shape: bool = False


def _size(draw, lo: int = 1, hi: int = 4) -> int:
    return draw(st.integers(lo, hi))


def _bjorck(draw) -> Case:
    d_in, d_out = _size(draw, 1, 6), _size(draw, 1, 6)
    config = layers.BjorckConfig(order=draw(st.integers(1, 2)))
    return Case(layers.BjorckLinear(d_in, d_out, draw(st.booleans()), config=config), (d_in,))


def _stacked(draw) -> Case:
    k, d_in, d_out = _size(draw, 1, 3), _size(draw, 1, 6), _size(draw, 1, 6)
    return Case(layers.StackedLinear(k, d_in, d_out), (k, d_in))


def _spectral_linear(draw) -> Case:
    d_in, d_out = _size(draw, 1, 6), _size(draw, 1, 6)
    n = draw(st.integers(0, 2))
    return Case(
        layers.SpectralLinear(d_in, d_out, draw(st.booleans()), n_power_iterations=n), (d_in,)
    )


def _aol_linear(draw) -> Case:
    d_in, d_out = _size(draw, 1, 6), _size(draw, 1, 6)
    return Case(layers.AOLLinear(d_in, d_out, draw(st.booleans())), (d_in,))


def _sll_linear(draw) -> Case:
    f = _size(draw, 1, 6)
    return Case(layers.SLLLinear(f, _size(draw, 1, 6)), (f,))


def _image(draw, c: int, lo: int = 2, hi: int = 4) -> tuple[int, int, int]:
    return (c, _size(draw, lo, hi), _size(draw, lo, hi))


def _bcop(draw) -> Case:
    c_in, c_out, k = _size(draw, 1, 3), _size(draw, 1, 3), _size(draw, 1, 3)
    padding = draw(st.sampled_from(["circular", "zeros"]))
    return Case(
        layers.BCOPConv2d(c_in, c_out, k, draw(st.booleans()), padding=padding), _image(draw, c_in)
    )


def _spectral_conv(draw) -> Case:
    c_in, c_out, k = _size(draw, 1, 3), _size(draw, 1, 3), draw(st.sampled_from([1, 3]))
    return Case(layers.SpectralConv2d(c_in, c_out, k, draw(st.booleans())), _image(draw, c_in))


def _aol_conv(draw) -> Case:
    c_in, c_out, k = _size(draw, 1, 3), _size(draw, 1, 3), draw(st.sampled_from([1, 3]))
    mode = draw(st.sampled_from(["zeros", "circular"]))
    return Case(
        layers.AOLConv2d(c_in, c_out, k, draw(st.booleans()), padding_mode=mode), _image(draw, c_in)
    )


def _sll_conv(draw) -> Case:
    c, k = _size(draw, 1, 3), draw(st.sampled_from([1, 3]))
    return Case(layers.SLLConv2d(c, _size(draw, 1, 3), k), _image(draw, c))


def _cayley(draw) -> Case:
    c_in, c_out, k = _size(draw, 1, 3), _size(draw, 1, 3), _size(draw, 1, 3)
    layer = layers.CayleyConv2d(c_in, c_out, k, draw(st.booleans()))
    return Case(layer, _image(draw, c_in, 1, 4), needs_shape=True)


def _fourier(draw) -> Case:
    c_in, c_out, k = _size(draw, 1, 3), _size(draw, 1, 3), _size(draw, 1, 3)
    c = max(c_in, c_out)
    bias = torch.randn(c_out) if draw(st.booleans()) else None
    layer = layers.FourierConv2d(torch.randn(c, c, k, k) / (c * k), c_in, c_out, bias)
    return Case(layer, _image(draw, c_in, 1, 4), needs_shape=True)


def _groupsort(draw) -> Case:
    g = _size(draw, 1, 3)
    return Case(layers.GroupSort(g), (g * _size(draw, 1, 3), _size(draw, 1, 3)))


def _downsample(draw) -> Case:
    f = _size(draw, 1, 2)
    return Case(
        layers.InvertibleDownsample(f),
        (_size(draw, 1, 2), f * _size(draw, 1, 2), f * _size(draw, 1, 2)),
    )


def _l2pool(draw) -> Case:
    k, s = _size(draw, 1, 3), _size(draw, 1, 3)
    eps = draw(st.sampled_from([0.0, 1e-12, 1e-2]))
    return Case(layers.L2NormPool2d(k, s, eps), _image(draw, _size(draw, 1, 2), k, k + 2))


# One factory per exported layer, and the dtypes each accepts on a CPU (torch has no
# half-precision FFT on a CPU: the Fourier-domain layers run in float32/float64 there).
FACTORIES: dict[type, tuple[Callable, tuple[torch.dtype, ...]]] = {
    layers.BjorckLinear: (_bjorck, FULL + HALF),
    layers.StackedLinear: (_stacked, FULL + HALF),
    layers.SpectralLinear: (_spectral_linear, FULL + HALF),
    layers.AOLLinear: (_aol_linear, FULL + HALF),
    layers.SLLLinear: (_sll_linear, FULL + HALF),
    layers.BCOPConv2d: (_bcop, FULL + HALF),
    layers.SpectralConv2d: (_spectral_conv, FULL + HALF),
    layers.AOLConv2d: (_aol_conv, FULL + HALF),
    layers.SLLConv2d: (_sll_conv, FULL + HALF),
    layers.CayleyConv2d: (_cayley, FULL),
    layers.FourierConv2d: (_fourier, FULL),
    layers.GroupSort: (_groupsort, FULL + HALF),
    layers.MaxMin: (
        lambda draw: Case(layers.MaxMin(), (2 * _size(draw), _size(draw))),
        FULL + HALF,
    ),
    layers.FullSort: (lambda draw: Case(layers.FullSort(), (_size(draw, 1, 6),)), FULL + HALF),
    layers.InvertibleDownsample: (_downsample, FULL + HALF),
    layers.L2NormPool2d: (_l2pool, FULL + HALF),
}
# the Björck parametrization maps a weight to a weight: not a layer on activations
NOT_LAYERS = {layers.Orthonormal}


def _from_contract_row(cls: type) -> Callable:
    row = CONTRACT_ROWS[cls]
    return lambda draw: Case(row.make(), row.sample_shape, row.needs_shape)


# A layer without a drawn factory here (a new one) is covered by its contract row: one fixed
# size, full precision. The shipped layers have drawn ones (random sizes, half precision).
EXPORTED = {
    obj
    for name in layers.__all__
    if inspect.isclass(obj := getattr(layers, name)) and issubclass(obj, nn.Module)
}
for _cls in sorted(EXPORTED - set(FACTORIES) - NOT_LAYERS, key=lambda c: c.__name__):
    if _cls in CONTRACT_ROWS:
        FACTORIES[_cls] = (_from_contract_row(_cls), FULL)


def test_every_exported_layer_has_a_factory():
    missing = EXPORTED - set(FACTORIES) - NOT_LAYERS
    assert not missing, (
        f"add a factory here or a row to tests/layers/test_contract.py for "
        f"{sorted(c.__name__ for c in missing)}"
    )


def _perturb(m: nn.Module, seed: int) -> None:
    """Raw weights and biases away from their initial values (an optimizer's work)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen).to(p))


def _draw_layer(draw, cls: type, dtype: torch.dtype) -> Case:
    """A drawn layer, perturbed, moved by one training forward, in eval mode and ``dtype``."""
    torch.manual_seed(draw(st.integers(0, 1000)))  # before the factory: reproducible draws
    case = FACTORIES[cls][0](draw)
    m = case.module.double()
    _perturb(m, seed=draw(st.integers(0, 1000)))
    m.train()(torch.randn(2, *case.shape, dtype=torch.float64))  # retractions, power steps
    return Case(m.to(dtype).eval(), case.shape, case.needs_shape)


def _bound(case: Case) -> float:
    """The bound on the drawn input shape: what the attack and the Jacobian see, no looser
    than the size-free bound (``tests/layers/test_bound_audit.py``) and much cheaper."""
    return lipschitz_bound(case.module, input_shape=case.shape)


def float_attack(
    m: nn.Module,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    seed: int,
    pairs: int = 16,
    steps: int = 20,
    separation: float = 0.25,
) -> float:
    """The largest ``|f(a) - f(b)| / |a - b|`` that Adam finds, with ``f`` evaluated in
    ``dtype`` on inputs in ``dtype`` and the ratio measured in float64.

    Pairs are kept at least ``separation`` times the largest norm of the two inputs and
    their outputs apart (a bias makes the outputs, hence their rounding, larger than the
    inputs): closer ones measure the rounding noise of two evaluations, not the map (see
    :mod:`wgan_lip.layers._rounding`).
    """
    params = [p for p in m.parameters() if p.requires_grad]
    for p in params:  # gradients for the inputs only; weights computed once per attack
        p.requires_grad_(False)
    try:
        with parametrize.cached():
            return _ascend(m, shape, dtype, seed, pairs, steps, separation)
    finally:
        for p in params:
            p.requires_grad_(True)


def _ascend(
    m: nn.Module,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    seed: int,
    pairs: int,
    steps: int,
    separation: float,
) -> float:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(pairs, *shape, generator=gen, dtype=torch.float64)
    b = a + 0.3 * torch.randn(pairs, *shape, generator=gen, dtype=torch.float64)
    a.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.Adam([a, b], lr=3e-2)
    best = 0.0
    for _ in range(steps):
        with torch.no_grad():  # separate the pairs before they are measured
            _separate(m, a, b, dtype, separation)
        ad, bd = a.to(dtype), b.to(dtype)
        diff_out = (m(ad).double() - m(bd).double()).flatten(1).norm(dim=1)
        ratio = diff_out / (ad.double() - bd.double()).flatten(1).norm(dim=1)
        finite = ratio[torch.isfinite(ratio)]
        if finite.numel():
            best = max(best, float(finite.detach().max()))
        opt.zero_grad()
        (-torch.nan_to_num(ratio, nan=0.0).sum()).backward()
        for t in (a, b):  # the square root of L2 pooling at 0 has no gradient
            t.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
    return best


def _separate(
    m: nn.Module, a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, separation: float
) -> None:
    """Move each ``b`` away from its ``a`` until they are ``separation`` times the largest
    norm of the two points and their outputs apart (in place)."""
    fa, fb = m(a.to(dtype)).double(), m(b.to(dtype)).double()
    norms = [t.flatten(1).norm(dim=1).nan_to_num(0.0) for t in (a, b, fa, fb)]
    # the outputs move with b: 1.5 times the floor keeps the pair apart afterwards too
    floor = 1.5 * separation * torch.stack(norms).amax(0)
    d = b - a
    scale = (floor / d.flatten(1).norm(dim=1).clamp_min(1e-30)).clamp_min(1.0)
    b.copy_(a + d * scale.view(-1, *[1] * (a.dim() - 1)))


def exact_plain_norm(m: nn.Module, shape: tuple[int, ...], seed: int, points: int = 3) -> float:
    """The largest Jacobian spectral norm of ``export_plain(m)``, in float64, at a few
    random points (the Lipschitz constant itself for an affine map)."""
    plain = export_plain(m).double()
    gen = torch.Generator().manual_seed(seed)
    best = 0.0
    for _ in range(points):
        x = torch.randn(math.prod(shape), generator=gen, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda v: plain(v.reshape(1, *shape)).flatten(), x)
        best = max(best, float(torch.linalg.matrix_norm(jac.reshape(-1, x.numel()), ord=2)))
    return best


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda c: c.__name__)
@settings(SETTINGS, max_examples=15)
@given(data=st.data())
def test_bound_covers_the_float_attack_and_the_exported_jacobian(cls, data):
    dtype = data.draw(st.sampled_from(FACTORIES[cls][1]), label="dtype")
    case = _draw_layer(data.draw, cls, dtype)
    seed = data.draw(st.integers(0, 1000), label="seed")
    bound = _bound(case)
    attack = float_attack(case.module, case.shape, dtype, seed)
    # the ratio itself is measured in float64: a permutation (sorting) measures 1 + 2e-16
    assert attack <= bound * (1 + 1e-12), (case.module, dtype, attack, bound)
    exact = exact_plain_norm(case.module, case.shape, seed)
    assert exact <= bound * (1 + 1e-12), (case.module, dtype, exact, bound)


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _assert_same_state(before: dict[str, torch.Tensor], m: nn.Module) -> None:
    after = m.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert v.dtype == after[k].dtype and v.shape == after[k].shape, k
        assert torch.equal(v, after[k]), k


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_computing_a_bound_changes_nothing(cls, data):
    case = _draw_layer(data.draw, cls, torch.float64)
    m = case.module.train(data.draw(st.booleans(), label="train"))
    x = torch.randn(3, *case.shape, dtype=torch.float64)
    with torch.no_grad():
        m.eval()
        before_out = m(x)
    m.train(data.draw(st.booleans(), label="train mode while bounding"))
    training = [sub.training for sub in m.modules()]
    before = _state(m)
    _bound(case)
    if len(case.shape) == 3:  # an image size the layer has not seen either
        lipschitz_bound(m, input_shape=(case.shape[0], *(s + 2 for s in case.shape[1:])))
    _assert_same_state(before, m)
    assert [sub.training for sub in m.modules()] == training
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), before_out, rtol=0, atol=0)


def _edit_data(m: nn.Module, gen: torch.Generator) -> None:
    """A hand-written EMA through ``.data``: no version-counter bump."""
    for p in m.parameters():
        p.data.mul_(0.9).add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _edit_copy(m: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p + 0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _edit_load(m: nn.Module, gen: torch.Generator) -> None:
    state = {
        k: v + 0.1 * torch.randn(v.shape, generator=gen, dtype=v.dtype)
        if v.is_floating_point()
        else v
        for k, v in m.state_dict().items()
    }
    m.load_state_dict(state)


EDITS = {"data": _edit_data, "copy": _edit_copy, "load_state_dict": _edit_load}


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_export_equals_the_layer_after_in_place_edits(cls, data):
    """Caches of computed weights (Björck, Cayley) see every way of changing a weight."""
    case = _draw_layer(data.draw, cls, torch.float64)
    m = case.module
    x = torch.randn(3, *case.shape, dtype=torch.float64)
    for edit in EDITS.values():
        for mode in (False, True):
            _check_edit(m, edit, mode, x)


def _check_edit(m: nn.Module, edit: Callable, training: bool, x: torch.Tensor) -> None:
    """Fill the caches in ``training`` mode, ``edit`` the weights, and compare the layer
    with its export and with a copy reloaded from its state dict."""
    with torch.no_grad():
        m.train(training)(x)
    edit(m, torch.Generator().manual_seed(7))
    with torch.no_grad():
        # a training forward may move a power iteration or retract a raw weight (same
        # function): the export is taken after it, of the eval-mode map
        m.train(training)(x)
        out = m.eval()(x)
        torch.testing.assert_close(export_plain(m)(x), out, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(_reload(m)(x), out, rtol=1e-9, atol=1e-9)


def _reload(m: nn.Module) -> nn.Module:
    """A deep copy whose parameters and buffers are then reloaded from ``m``'s state dict:
    loading a layer's own state gives the same function."""
    import copy

    clone = copy.deepcopy(m)
    _edit_copy(clone, torch.Generator().manual_seed(3))  # different weights first
    clone.load_state_dict(m.state_dict())
    return clone.eval()


# ---------------------------------------------------------------- the reported cases


def test_aol_linear_float32_attack_is_below_its_bound():
    """A float32 attack on ``AOLLinear(16, 16)`` reached 1.0000014 against a bound of
    0.99999997 (no rounding term); the bound now covers it and stays tight."""
    torch.manual_seed(0)
    layer = layers.AOLLinear(16, 16).eval()
    bound = lipschitz_bound(layer)
    exact = float(torch.linalg.svdvals(layer.weight.detach().double()).max())
    attack = float_attack(layer, (16,), torch.float32, seed=0, pairs=64, steps=60)
    assert attack > exact  # the attack does see rounding above the exact norm
    assert attack <= bound <= exact * (1 + 1e-4)
    assert bound >= 1.0000014


def test_exported_sll_jacobian_is_below_its_bound():
    """The exported SLL layer's exact Jacobian norm was 1.00000015 against a bound of 1."""
    for seed in range(4):
        torch.manual_seed(seed)
        layer = layers.SLLLinear(16).eval()
        assert exact_plain_norm(layer, (16,), seed=seed, points=4) <= lipschitz_bound(layer)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"eps": -1e-4}, "eps"),
        ({"eps": float("nan")}, "eps"),
        ({"eps": float("inf")}, "eps"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": 2.5}, "kernel_size"),
        ({"stride": -1}, "stride"),
    ],
)
def test_l2_pool_refuses_arguments_that_break_the_bound(kwargs, name):
    with pytest.raises(ValueError, match=name):
        layers.L2NormPool2d(**kwargs)


def test_l2_pool_negative_eps_was_the_reported_case():
    """``eps=-1e-4`` gave f(0) = NaN and a ratio of 200 under a bound of 1: refused, and
    ``eps=0`` (the plain norm) stays 1-Lipschitz and finite at 0."""
    from wgan_lip.errors import InputError

    with pytest.raises(InputError, match=r"eps must be a finite number >= 0, got -0\.0001"):
        layers.L2NormPool2d(eps=-1e-4)
    pool = layers.L2NormPool2d(2, eps=0.0)
    assert bool(torch.isfinite(pool(torch.zeros(1, 1, 2, 2))).all())


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: layers.SLLLinear(0), "features"),
        (lambda: layers.SLLLinear(3, 0), "hidden"),
        (lambda: layers.SLLConv2d(2, kernel_size=2), "kernel_size"),
        (lambda: layers.SLLConv2d(2, kernel_size=-1), "kernel_size"),
        (lambda: layers.BjorckLinear(0, 3), "in_features"),
        (lambda: layers.AOLLinear(3, -1), "out_features"),
        (lambda: layers.AOLConv2d(2, 2, -1), "kernel_size"),
        (lambda: layers.SpectralConv2d(2, 2, -1), "kernel_size"),
        (lambda: layers.SpectralLinear(2, 2, n_power_iterations=-1), "n_power_iterations"),
        (lambda: layers.CayleyConv2d(2, 0), "out_channels"),
        (lambda: layers.FourierConv2d(torch.randn(2, 3, 1, 1), 2, 2), "kernel"),
        (lambda: layers.GroupSort(0), "group_size"),
        (lambda: layers.InvertibleDownsample(0), "factor"),
        (lambda: layers.BjorckConfig(tol=float("nan")), "tol"),
        (lambda: layers.BjorckConfig(power_iters=-2), "power_iters"),
    ],
)
def test_constructor_arguments_that_break_the_maths_are_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize("log_q", [89.0, 200.0, -200.0, "spread"])
@pytest.mark.parametrize("dtype", FULL)
def test_sll_log_q_beyond_exp_range_is_computed_stably(log_q, dtype):
    """``exp(89)`` overflows float32: T was inf / inf = NaN while the bound said 1. T is now
    computed in log space: finite outputs, and the bound covers the exported Jacobian (a
    spread of 300 makes some T infinite in float32: those units are switched off, z / inf =
    0, which is still a certified map)."""
    torch.manual_seed(0)
    for layer, shape in ((layers.SLLLinear(6, 5), (6,)), (layers.SLLConv2d(2, 3), (2, 4, 4))):
        layer = layer.to(dtype).eval()
        with torch.no_grad():
            if log_q == "spread":
                layer.log_q.copy_(torch.linspace(-150, 150, layer.log_q.numel()))
            else:
                layer.log_q.fill_(log_q)
        out = layer(torch.randn(4, *shape, dtype=dtype))
        assert bool(torch.isfinite(out).all())
        assert exact_plain_norm(layer, shape, seed=0) <= lipschitz_bound(layer)


def test_sll_whose_forward_overflows_has_no_certificate():
    """Weights whose Gram overflows make T infinite and the forward pass inf / inf = NaN:
    ``lipschitz_bound`` refuses rather than certifies."""
    layer = layers.SLLLinear(4).eval()
    with torch.no_grad():
        layer.weight.mul_(1e20)
    assert not bool(torch.isfinite(layer(torch.randn(2, 4))).all())
    with pytest.raises(NonFiniteWeightsError, match="SLLLinear"):
        lipschitz_bound(layer)


def test_spectral_conv_bound_has_no_side_effect():
    """``lipschitz_bound`` used to re-create and advance the power-iteration vector."""
    torch.manual_seed(0)
    m = layers.SpectralConv2d(2, 3, 3).double()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    m(x)  # train mode: the vector takes the 5x5 shape
    before = _state(m)
    with torch.no_grad():
        out = m.eval()(x)
    m.train()
    for shape in (None, (2, 7, 7), (2, 5, 5)):
        lipschitz_bound(m, input_shape=shape)
    _assert_same_state(before, m)
    assert m.training
    with torch.no_grad():
        assert torch.equal(m.eval()(x), out)
        m(torch.randn(1, 2, 9, 9, dtype=torch.float64))  # eval on another size: no change
    _assert_same_state(before, m)


@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("training", [False, True])
def test_bjorck_and_cayley_caches_see_in_place_edits(edit, training):
    """``p.data`` writes do not bump ``_version``: the cached polar factor / Cayley
    matrices were used with the old weights, so the layer and its export disagreed."""
    torch.manual_seed(0)
    for m, shape in (
        (layers.BjorckLinear(5, 5), (5,)),
        (layers.CayleyConv2d(2, 2), (2, 4, 4)),
        (layers.BCOPConv2d(2, 2, 3), (2, 4, 4)),
    ):
        m = m.double().train(training)
        x = torch.randn(3, *shape, dtype=torch.float64)
        with torch.no_grad():
            old = m(x)
            EDITS[edit](m, torch.Generator().manual_seed(1))
            new = m(x)
            assert not torch.allclose(new, old)
            torch.testing.assert_close(export_plain(m)(x), m.eval()(x), rtol=1e-9, atol=1e-9)

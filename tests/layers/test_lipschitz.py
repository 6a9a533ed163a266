import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from wgan_lip.layers import (
    BjorckLinear,
    SpectralLinear,
    conv_transfer_bound,
    empirical_lipschitz,
    lipschitz_bound,
)
from wgan_lip.models import lipschitz_convnet, lipschitz_mlp


def test_linear_bound_is_the_exact_spectral_norm():
    """The exact norm plus the rounding of the forward pass: negligible in float64, a few
    float32 units (7 products, a bias add and the output roundings) in float32."""
    layer = nn.Linear(7, 5)
    expected = float(torch.linalg.svdvals(layer.weight.detach().double()).max())
    assert expected < lipschitz_bound(layer) < expected * (1 + 1e-5)
    assert lipschitz_bound(layer.double()) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
@pytest.mark.parametrize(("k", "stride", "groups"), [(3, 1, 1), (3, 2, 1), (5, 1, 1), (3, 1, 2)])
def test_conv_bound_is_sound_against_the_exact_operator_norm(padding_mode, k, stride, groups):
    conv = nn.Conv2d(
        4, 6, k, stride=stride, padding=k // 2, groups=groups, padding_mode=padding_mode
    ).double()
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: conv(t) - conv.bias.view(1, -1, 1, 1), x)
    exact = torch.linalg.svdvals(jac.reshape(-1, x.numel())).max()
    bound = lipschitz_bound(conv)
    assert bound >= float(exact)
    assert bound <= 1.1 * conv_transfer_bound(conv.weight, grid=256) + 1e-9


def test_orthogonal_networks_are_bounded_within_one_percent_of_one():
    mlp = lipschitz_mlp(20, [32, 32], 1)
    net = lipschitz_convnet(3, 16, (8, 16), 10)
    for m in (mlp, net):
        assert 1.0 <= lipschitz_bound(m) + 1e-6
        assert lipschitz_bound(m) <= 1.01


def test_unknown_modules_are_refused_by_name():
    class Residual(nn.Module):
        def forward(self, x):
            return x + x

    with pytest.raises(TypeError, match="Residual"):
        lipschitz_bound(nn.Sequential(nn.Linear(3, 3), Residual()))
    with pytest.raises(TypeError, match="reflect"):
        lipschitz_bound(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"))
    bn = nn.BatchNorm1d(3)  # certified as in eval mode: running statistics
    with torch.no_grad():
        bn.running_var.fill_(0.25)
    assert lipschitz_bound(bn) == pytest.approx(2.0, rel=1e-4)
    assert bn.training  # the mode is restored


def test_a_module_method_and_pooling_rules():
    class Scaled(nn.Module):
        def lipschitz_bound(self):
            return 3.0

    assert lipschitz_bound(nn.Sequential(Scaled(), nn.LeakyReLU(0.2), nn.Sigmoid())) == 0.75
    pool = nn.AvgPool2d(2)
    x = torch.randn(4, 1, 6, 6, dtype=torch.float64)
    assert lipschitz_bound(pool) == pytest.approx(0.5)
    assert empirical_lipschitz(pool, x, steps=30) <= 0.5 + 1e-9


@st.composite
def architectures(draw):
    kind = draw(st.sampled_from(["bjorck", "spectral", "plain", "conv"]))
    if kind == "conv":
        chans = tuple(draw(st.lists(st.sampled_from([2, 4]), min_size=1, max_size=2)))
        return kind, lipschitz_convnet(1, 8, chans, 3, kernel_size=draw(st.sampled_from([1, 2, 3])))
    d_in = draw(st.integers(2, 12))
    widths = draw(st.lists(st.sampled_from([2, 4, 8, 16]), min_size=0, max_size=3))
    d_out = draw(st.integers(1, 4))
    if kind == "plain":
        layers, prev = [], d_in
        for w in widths:
            layers += [nn.Linear(prev, w), nn.ReLU()]
            prev = w
        return kind, nn.Sequential(*layers, nn.Linear(prev, d_out))
    act = draw(st.sampled_from(["groupsort", "relu", "fullsort"]))
    return kind, lipschitz_mlp(d_in, widths, d_out, activation=act, linear=kind)


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(arch=architectures(), seed=st.integers(0, 10_000))
def test_certified_bound_is_never_below_the_attack(arch, seed):
    kind, net = arch
    net = net.double()
    torch.manual_seed(seed)
    if kind == "conv":
        x = torch.randn(8, 1, 8, 8, dtype=torch.float64)
    else:
        x = torch.randn(16, net[0].in_features, dtype=torch.float64)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear) and not isinstance(m, BjorckLinear | SpectralLinear):
                m.weight.mul_(2.0)  # unconstrained layers get constants away from 1
    found = empirical_lipschitz(net, x, steps=40)
    assert found <= lipschitz_bound(net) * (1 + 1e-9)
    relu = any(isinstance(m, nn.ReLU) for m in net.modules())
    # ReLU nets can be flat around every sample (all units off); GroupSort nets never are.
    assert found > 0 or relu


def test_attack_reaches_the_constant_of_a_linear_map():
    layer = nn.Linear(6, 6, bias=False).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    exact = lipschitz_bound(layer)
    assert empirical_lipschitz(layer, x, steps=200, lr=5e-2) >= 0.99 * exact
    assert F.linear(x, layer.weight).shape == (4, 6)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    s=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    pad=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ceil_mode=st.booleans(),
    count_include_pad=st.booleans(),
    override=st.one_of(st.none(), st.integers(1, 9)),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
)
def test_avg_pool_bound_is_at_least_the_exact_norm_for_every_option(
    k, s, pad, ceil_mode, count_include_pad, override, size
):
    pad = (min(pad[0], k[0] // 2), min(pad[1], k[1] // 2))  # torch requires pad <= k / 2
    m = nn.AvgPool2d(
        k,
        s,
        pad,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=override,
    )
    h, w = size
    eye = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
    try:
        out = m(eye)
    except RuntimeError:  # input smaller than the window
        return
    if out.numel() == 0:
        return
    exact = float(torch.linalg.matrix_norm(out.reshape(h * w, -1).T, ord=2))
    assert lipschitz_bound(m) >= exact * (1 - 1e-9)


def test_avg_pool_bounds_of_the_reported_cases():
    x = torch.zeros(1, 1, 7, 7, dtype=torch.float64)
    x[0, 0, 6, 6] = 1.0  # alone in the clipped last window: the ratio is 1
    ceil = nn.AvgPool2d(2, ceil_mode=True)
    assert float(ceil(x).norm() / x.norm()) == pytest.approx(1.0)
    assert lipschitz_bound(ceil) >= 1.0
    assert lipschitz_bound(nn.AvgPool2d(3, 1, 1, count_include_pad=False)) > 1.01
    assert lipschitz_bound(nn.AvgPool2d(2)) == pytest.approx(0.5)

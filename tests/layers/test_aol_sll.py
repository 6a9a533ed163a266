"""AOL and SLL layers: 1-Lipschitz for every parameter value, on every input size."""

from __future__ import annotations

import pytest
import torch

from wgan_lip.layers import (
    AOLConv2d,
    AOLLinear,
    SLLConv2d,
    SLLLinear,
    empirical_lipschitz,
    lipschitz_bound,
)
from wgan_lip.layers.aol import aol_scale


def _operator_norm(f, shape: tuple[int, ...]) -> float:
    """Largest singular value of a linear map on one sample of ``shape`` (float64)."""
    n = int(torch.tensor(shape).prod())
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    with torch.no_grad():
        mat = f(eye).reshape(n, -1)
    return float(torch.linalg.matrix_norm(mat, ord=2))


def _jacobian_norm(f, x: torch.Tensor) -> float:
    jac = torch.autograd.functional.jacobian(lambda v: f(v.reshape(x.shape)).flatten(), x.flatten())
    return float(torch.linalg.matrix_norm(jac, ord=2))


def _scramble(module: torch.nn.Module, scale: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (6, 6)])
def test_aol_linear_is_a_contraction_for_any_weight(seed, shape):
    out_f, in_f = shape
    layer = AOLLinear(in_f, out_f).double()
    _scramble(layer, 3.0, seed)
    norm = torch.linalg.matrix_norm(layer.weight, ord=2).item()
    assert norm <= 1 + 1e-12
    assert lipschitz_bound(layer) == pytest.approx(norm, rel=1e-12)


def test_aol_keeps_an_orthogonal_weight_as_it_is():
    layer = AOLLinear(6, 6).double()
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    with torch.no_grad():
        layer.parametrizations.weight.original.copy_(3.0 * q)
    torch.testing.assert_close(layer.weight, q)
    assert lipschitz_bound(layer) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
@pytest.mark.parametrize("size", [1, 3, 6])
def test_aol_conv_is_a_contraction_on_every_input_size(padding_mode, size):
    conv = AOLConv2d(3, 2, 3, bias=False, padding_mode=padding_mode).double()
    _scramble(conv, 1.0, size)
    shape = (3, size, size)
    exact = _operator_norm(conv, shape)
    bound = lipschitz_bound(conv)
    assert exact <= bound * (1 + 1e-9)
    assert bound <= 1 + 1e-9


def test_aol_conv_scale_is_one_per_input_channel():
    kernel = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    d = aol_scale(kernel)
    assert d.shape == (3,)
    # a kernel with one centre tap per channel pair and orthonormal centre: no rescaling
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    k = torch.zeros(3, 3, 3, 3, dtype=torch.float64)
    k[:, :, 1, 1] = q
    torch.testing.assert_close(aol_scale(k), torch.ones(3, dtype=torch.float64))


def test_aol_conv_refuses_unbounded_options():
    with pytest.raises(ValueError, match="reflect"):
        AOLConv2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="odd kernel_size"):
        AOLConv2d(2, 2, 2)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("features,hidden", [(6, 6), (6, 9), (6, 3)])
def test_sll_linear_is_1_lipschitz_for_any_parameters(seed, features, hidden):
    layer = SLLLinear(features, hidden).double()
    _scramble(layer, 2.0, seed)  # log_q far from 0 too
    assert lipschitz_bound(layer) == pytest.approx(1.0, abs=1e-9)
    gen = torch.Generator().manual_seed(seed)
    worst = max(
        _jacobian_norm(layer, torch.randn(1, features, generator=gen, dtype=torch.float64))
        for _ in range(8)
    )
    assert worst <= 1 + 1e-9
    x = torch.randn(64, features, generator=gen, dtype=torch.float64)
    assert empirical_lipschitz(layer, x) <= 1 + 1e-6


@pytest.mark.parametrize("size", [1, 4, 7])
def test_sll_conv_is_1_lipschitz_on_every_input_size(size):
    layer = SLLConv2d(2, 3, 3).double()
    _scramble(layer, 1.5, size)
    assert lipschitz_bound(layer) == pytest.approx(1.0, abs=1e-9)
    gen = torch.Generator().manual_seed(size)
    for _ in range(4):
        x = torch.randn(1, 2, size, size, generator=gen, dtype=torch.float64)
        assert _jacobian_norm(layer, x) <= 1 + 1e-9


def test_sll_conv_update_uses_the_adjoint_convolution():
    """``conv_transpose2d`` with the same padding is the adjoint of the 'same' convolution:
    the Jacobian at a point where every ReLU is open is symmetric."""
    layer = SLLConv2d(2, 2, 3).double()
    with torch.no_grad():
        layer.bias.fill_(100.0)  # every hidden unit active: a linear map
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(
        lambda v: layer(v.reshape(x.shape)).flatten(), x.flatten()
    )
    torch.testing.assert_close(jac, jac.T)


def test_sll_bound_reports_a_broken_promise(monkeypatch):
    """The bound is recomputed from the weights, never assumed: a T too small shows."""
    import wgan_lip.layers.sll as sll

    layer = SLLLinear(4).double()
    assert lipschitz_bound(layer) == pytest.approx(1.0)
    real_t = sll.sll_t
    monkeypatch.setattr(sll, "sll_t", lambda w, q: 0.25 * real_t(w, q))  # the layer expands
    with torch.no_grad():
        layer.bias.fill_(10.0)  # every ReLU open
    x = torch.randn(256, 4, dtype=torch.float64)
    measured = empirical_lipschitz(layer, x)
    assert measured > 1.5
    assert lipschitz_bound(layer) >= measured * (1 - 1e-6)


@pytest.mark.parametrize("make", [lambda: SLLLinear(8, 16), lambda: AOLLinear(8, 8)])
def test_trained_layers_keep_their_bound(make):
    """A few hundred optimizer steps on a task that rewards expansion: the bound of the
    trained layer stays at its promise (1) within 1%."""
    torch.manual_seed(0)
    layer = make()
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    for _ in range(200):
        x = torch.randn(64, 8)
        loss = -(layer(x) - layer(x + 0.1 * torch.randn_like(x))).norm(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert lipschitz_bound(layer) <= 1.01
    x = torch.randn(128, 8)
    assert empirical_lipschitz(layer, x) <= lipschitz_bound(layer) * (1 + 1e-4)


def test_sll_layers_refuse_bad_sizes():
    with pytest.raises(ValueError, match="positive"):
        SLLLinear(0)
    with pytest.raises(ValueError, match="odd kernel_size"):
        SLLConv2d(3, kernel_size=4)
    with pytest.raises(ValueError, match="SLLConv2d"):
        SLLConv2d(3)(torch.randn(1, 2, 5, 5))


@pytest.mark.parametrize("channels,hidden", [(8, 8), (32, 48)])
def test_sll_conv_bound_is_tight_for_a_normalized_kernel(channels, hidden):
    """The promise is 1: the bound from the weights must be 1 up to rounding, not the
    transfer-matrix bound inflated for soundness (2 rho - 1 doubles any excess), also for a
    normalized kernel given without its construction's weights (a peer's SLL block)."""
    from wgan_lip.layers.sll import sll_block_bound, sll_t

    torch.manual_seed(channels)
    layer = SLLConv2d(channels, hidden).double()
    _scramble(layer, 1.0, channels)
    assert lipschitz_bound(layer) == pytest.approx(1.0, abs=1e-9)
    w = layer.weight.detach()
    scaled = w / sll_t(w, layer.log_q.detach()).sqrt()[:, None, None, None]
    assert sll_block_bound(scaled) == pytest.approx(1.0, abs=1e-6)

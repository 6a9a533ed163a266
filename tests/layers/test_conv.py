from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from wgan_lip.layers import (
    BCOPConv2d,
    InvertibleDownsample,
    L2NormPool2d,
    compose_kernels,
    empirical_lipschitz,
    export_plain,
    lipschitz_bound,
)


def jacobian_svals(module, shape):
    x = torch.randn(1, *shape, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(module, x)
    out = jac.shape[: jac.dim() // 2].numel()
    return torch.linalg.svdvals(jac.reshape(out, -1))


@pytest.mark.parametrize(
    ("cin", "cout", "k"), [(6, 6, 3), (4, 8, 3), (8, 4, 3), (6, 6, 2), (4, 4, 5), (6, 6, 1)]
)
def test_circular_bcop_is_orthogonal_through_its_full_jacobian(cin, cout, k):
    layer = BCOPConv2d(cin, cout, k, padding="circular").double()
    s = jacobian_svals(layer, (cin, 6, 6))
    # in <= out: an isometry (all singular values 1); in > out: orthonormal rows.
    assert s.numel() == min(cin, cout) * 36
    assert (s - 1).abs().max() < 1e-10


def test_zero_padded_bcop_is_one_lipschitz():
    layer = BCOPConv2d(4, 4, 3, padding="zeros").double()
    s = jacobian_svals(layer, (4, 5, 5))
    assert s.max() <= 1 + 1e-10
    assert s.min() < 0.999  # the boundary loses norm: not orthogonal, as documented


def test_trained_float32_bcop_singular_values_stay_within_goal():
    layer = BCOPConv2d(8, 8, 3)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    x = torch.randn(16, 8, 8, 8)
    target = torch.randn(16, 8, 8, 8)
    for _ in range(30):
        opt.zero_grad()
        F.mse_loss(layer(x), target).backward()
        opt.step()
    plain = export_plain(layer).double()  # the float32 kernel, evaluated exactly
    s = jacobian_svals(plain, (8, 6, 6))
    assert s.min() >= 1 - 1e-3 and s.max() <= 1 + 1e-4
    assert lipschitz_bound(layer) >= s.max() - 1e-12


def test_compose_kernels_matches_sequential_convolutions():
    a = torch.randn(5, 3, 2, 3, dtype=torch.float64)
    b = torch.randn(4, 5, 3, 2, dtype=torch.float64)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    seq = F.conv2d(F.conv2d(x, a), b)
    direct = F.conv2d(x, compose_kernels(b, a))
    assert torch.allclose(seq, direct, atol=1e-12)


def test_bcop_gradients_flow_and_input_errors():
    layer = BCOPConv2d(4, 4, 3)
    layer(torch.randn(2, 4, 6, 6)).sum().backward()
    assert layer.parametrizations.weight.original1.grad is not None
    with pytest.raises(ValueError, match=r"expected 4 input channels.*\(2, 3, 6, 6\)"):
        layer(torch.randn(2, 3, 6, 6))
    with pytest.raises(ValueError, match="4-D input"):
        layer(torch.randn(4, 6, 6))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(2, 4, 6, 6, dtype=torch.uint8))
    with pytest.raises(ValueError, match="InvertibleDownsample"):
        BCOPConv2d(4, 4, 3, stride=2)


def test_invertible_downsample_is_norm_preserving_and_invertible():
    x = torch.randn(3, 2, 8, 8)
    y = InvertibleDownsample(2)(x)
    assert y.shape == (3, 8, 4, 4)
    assert torch.allclose(y.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))
    assert torch.equal(F.pixel_shuffle(y, 2), x)
    with pytest.raises(ValueError, match="not divisible by factor 2"):
        InvertibleDownsample(2)(torch.randn(1, 1, 5, 4))


@pytest.mark.parametrize(("k", "s"), [(2, 2), (3, 1), (3, 2)])
def test_l2_norm_pool_is_one_lipschitz(k, s):
    pool = L2NormPool2d(k, s)
    x = torch.randn(8, 2, 7, 7, dtype=torch.float64)
    # alone, a weightless pool is certified in the default dtype (float32): 1 plus the
    # rounding of its squares, sums and square root, a few float32 units
    assert 1.0 < lipschitz_bound(pool) < 1.0 + 100 * torch.finfo(torch.float32).eps
    assert empirical_lipschitz(pool, x, steps=60) <= 1 + 1e-6
    if k == s:  # non-overlapping windows: the window norms themselves
        expected = F.avg_pool2d(x * x, k).mul(k * k).sqrt()
        assert torch.allclose(pool(x), expected, atol=1e-5)


def test_bcop_state_dict_round_trip_and_dtypes():
    a = BCOPConv2d(4, 6, 3)
    a(torch.randn(2, 4, 5, 5)).sum().backward()
    b = BCOPConv2d(4, 6, 3)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(a.eval()(x), b.eval()(x), atol=1e-6)
    y = a.double()(x.double())
    assert y.dtype == torch.float64 and torch.allclose(y.float(), b(x), atol=1e-5)


@pytest.mark.parametrize("mode", ["circular", "zeros"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_bcop_is_a_real_parametrized_conv2d(mode, k):
    """Downstream tools see an nn.Conv2d whose weight is a parametrization: torch's own
    Conv2d forward with the layer's padding, padding_mode and composed weight is the layer's
    forward, and the export is one plain nn.Conv2d with the same options."""
    torch.manual_seed(0)
    m = BCOPConv2d(3, 4, k, padding=mode).double().eval()
    assert isinstance(m, nn.Conv2d) and parametrize.is_parametrized(m, "weight")
    assert m.padding_mode == mode and m.padding == ((k // 2, k // 2) if k % 2 else "same")
    assert m.kernel_size == (k, k) and m.stride == (1, 1) and m.weight.shape == (4, 3, k, k)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    y = m(x)
    assert y.shape == (2, 4, 6, 5)
    assert torch.equal(nn.Conv2d.forward(m, x), y)
    # the geometry of earlier versions: pad (k-1)//2 before, the rest after, then convolve
    left = (k - 1) // 2
    padded = F.pad(x, (left, k - 1 - left) * 2, mode="constant" if mode == "zeros" else mode)
    torch.testing.assert_close(F.conv2d(padded, m.weight, m.bias), y, atol=1e-12, rtol=0)
    plain = export_plain(m)
    assert type(plain) is nn.Conv2d and plain.padding == m.padding
    assert plain.padding_mode == mode
    torch.testing.assert_close(plain(x), y, atol=1e-12, rtol=0)  # a re-run Björck: rounding
    assert sorted(m.state_dict()) == [
        "bias",
        "parametrizations.weight.original0",
        "parametrizations.weight.original1",
    ]
    with pytest.raises(RuntimeError, match="cannot be assigned"):
        m.weight = torch.zeros(4, 3, k, k, dtype=torch.float64)


def test_bcop_loads_state_dicts_of_the_earlier_layout():
    """tests/layers/data/bcop_v1.pt: state dicts saved when the factors were separately
    parametrized tensors (keys parametrizations.ortho.original, parametrizations.proj.original,
    or a plain proj for k = 1), with inputs and that version's outputs (float64, eval),
    written by the BCOPConv2d of commit 3b9f7e4."""
    cases = torch.load(Path(__file__).parent / "data" / "bcop_v1.pt", weights_only=True)
    assert {k for c in cases for k in c["state_dict"]} >= {
        "parametrizations.ortho.original",
        "parametrizations.proj.original",
        "proj",
    }
    for case in cases:
        m = BCOPConv2d(*case["args"], padding=case["padding"], dtype=torch.float64)
        m.load_state_dict(case["state_dict"])
        torch.testing.assert_close(m.eval()(case["x"]), case["y"], atol=1e-12, rtol=1e-12)
        net = nn.Sequential(
            nn.Identity(), BCOPConv2d(*case["args"], padding=case["padding"], dtype=torch.float64)
        )
        net.load_state_dict({f"1.{k}": v for k, v in case["state_dict"].items()})  # nested
        torch.testing.assert_close(net.eval()(case["x"]), case["y"], atol=1e-12, rtol=1e-12)
        with pytest.raises(RuntimeError, match="Missing key"):
            m.load_state_dict({k: v for k, v in case["state_dict"].items() if "ortho" not in k})

import pytest
import torch
from torch.nn.utils import parametrize

from wgan_lip.layers import BjorckConfig, BjorckLinear, bjorck
from wgan_lip.layers import orthogonal as ortho_mod


def svals(w):
    return torch.linalg.svdvals(w.detach().double())


@pytest.mark.parametrize("shape", [(32, 32), (48, 16), (16, 48), (3, 10, 6)])
@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bjorck_is_orthonormal_at_any_scale(shape, scale, dtype):
    w = torch.randn(*shape, dtype=dtype) * scale
    q = bjorck(w)
    assert torch.isfinite(q).all()
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    assert (svals(q) - 1).abs().max() < tol
    small = min(shape[-2:])
    gram = q.mT @ q if shape[-2] >= shape[-1] else q @ q.mT
    assert gram.shape[-1] == small


def test_bjorck_is_the_polar_factor():
    w = torch.randn(20, 12, dtype=torch.float64)
    u, _, vh = torch.linalg.svd(w, full_matrices=False)
    assert torch.allclose(bjorck(w), u @ vh, atol=1e-10)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_higher_orders_converge_to_the_same_factor(order):
    w = torch.randn(24, 24, dtype=torch.float64)
    assert torch.allclose(bjorck(w, order=order), bjorck(w, order=1), atol=1e-9)


def test_bjorck_is_differentiable_through_its_iterations():
    w = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: bjorck(w, iters=6), (w,))
    bjorck(w).sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()


@pytest.mark.parametrize("scale", [1e19, 1e30, 1e-30, 1e-38])
def test_bjorck_is_orthonormal_at_extreme_float32_scales(scale):
    torch.manual_seed(0)
    q = bjorck(torch.randn(4, 4) * scale)
    assert torch.isfinite(q).all() and (svals(q) - 1).abs().max() < 1e-4


@pytest.mark.parametrize("iters", [0, -1, 1.5, True])
def test_bjorck_rejects_bad_iteration_counts(iters):
    with pytest.raises(ValueError, match="iters"):
        bjorck(torch.randn(3, 3), iters=iters)


def test_bjorck_refuses_matrices_without_a_polar_factor_and_warns_when_rank_deficient():
    with pytest.raises(ValueError, match="zero matrix"):
        bjorck(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        bjorck(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="tol"):
        bjorck(torch.randn(3, 3), tol=2.0)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        bjorck(torch.ones(3, 3))  # rank 1: two singular values stay 0


def test_bjorck_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        bjorck(torch.ones(3, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="matrix"):
        bjorck(torch.ones(3))
    with pytest.raises(ValueError, match="order"):
        BjorckConfig(order=0)


def _train(layer, steps=60, lr=1e-2, dtype=torch.float32):
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    x = torch.randn(64, layer.in_features, dtype=dtype)
    target = torch.randn(64, layer.out_features, dtype=dtype)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (layer(x) - target).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("backward", ["tangent", "unroll"])
@pytest.mark.parametrize("shape", [(64, 64), (96, 32), (32, 96)])
def test_trained_bjorck_linear_stays_orthonormal(shape, backward):
    layer = BjorckLinear(*shape, config=BjorckConfig(backward=backward))
    losses = _train(layer)
    assert losses[-1] < losses[0]  # it learns
    layer.eval()
    assert (svals(layer.weight) - 1).abs().max() < 1e-4


def test_float64_layer_is_orthonormal_to_float64_precision():
    layer = BjorckLinear(40, 40, dtype=torch.float64)
    _train(layer, steps=20, dtype=torch.float64)
    assert (svals(layer.weight) - 1).abs().max() < 1e-10


def test_tangent_gradient_equals_unrolled_gradient_at_scaled_orthogonal_weights():
    torch.manual_seed(1)
    raw = torch.linalg.qr(torch.randn(30, 30, dtype=torch.float64))[0] * 2.5
    raw = raw + 1e-9 * torch.randn_like(raw)  # still (numerically) a scaled orthogonal matrix
    x = torch.randn(8, 30, dtype=torch.float64)
    grads = []
    for backward in ("tangent", "unroll"):
        layer = BjorckLinear(
            30,
            30,
            bias=False,
            dtype=torch.float64,
            config=BjorckConfig(backward=backward, retract=False),
        )
        with torch.no_grad():
            layer.parametrizations.weight.original.copy_(raw)
        layer(x).pow(3).sum().backward()
        grads.append(layer.parametrizations.weight.original.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6 * grads[1].abs().max())


def test_retraction_keeps_the_function_and_makes_the_raw_weight_scaled_orthogonal():
    layer = BjorckLinear(16, 16)
    with torch.no_grad():
        layer.parametrizations.weight.original.add_(0.3 * torch.randn(16, 16))
    x = torch.randn(5, 16)
    before = layer(x).detach()  # first train-mode forward retracts
    raw = layer.parametrizations.weight.original.detach().double()
    s = svals(raw)
    assert (s.max() / s.min()) < 1 + 1e-5
    assert torch.allclose(layer(x), before, atol=1e-6)


def test_eval_mode_caches_until_the_weight_changes(monkeypatch):
    calls = []
    real = ortho_mod._solve_tall
    monkeypatch.setattr(ortho_mod, "_solve_tall", lambda *a: calls.append(1) or real(*a))
    layer = BjorckLinear(12, 12).eval()
    x = torch.randn(3, 12)
    for _ in range(5):
        layer(x)
    assert len(calls) == 1
    plain = torch.nn.functional.linear(x, layer.weight.detach(), layer.bias)
    assert torch.equal(layer(x), plain)
    other = BjorckLinear(12, 12).eval()
    expected = other(x)
    calls.clear()
    layer.load_state_dict(other.state_dict())  # bumps the weight's version: recompute
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert len(calls) == 1


def test_eval_mode_still_gives_input_and_weight_gradients():
    layer = BjorckLinear(10, 10).eval()
    x = torch.randn(4, 10, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and layer.parametrizations.weight.original.grad is not None


def test_state_dict_round_trip():
    a = BjorckLinear(20, 12)
    _train(a, steps=5)
    b = BjorckLinear(20, 12)
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 20)
    assert torch.allclose(a.eval()(x), b.eval()(x), atol=1e-6)
    assert all(isinstance(v, torch.Tensor) for v in a.state_dict().values())
    assert parametrize.is_parametrized(b, "weight")


def test_bjorck_linear_input_errors():
    layer = BjorckLinear(8, 4)
    with pytest.raises(ValueError, match=r"expected 8 input features.*\(3, 5\)"):
        layer(torch.randn(3, 5))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(3, 8, dtype=torch.long))

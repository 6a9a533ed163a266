"""CayleyConv2d: an orthogonal map of the whole input on every input size, kept so by
training, and certified only with the input size it is bounded on."""

import math

import pytest
import torch
from torch import nn

from wgan_lip.layers import CayleyConv2d, export_plain, lipschitz_bound
from wgan_lip.robust import certify


def full_matrix(m: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """The matrix of the linear part of ``m`` on inputs of ``shape`` (rows: inputs)."""
    n = math.prod(shape)
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    with torch.no_grad():
        return (m(eye) - m(torch.zeros(1, *shape, dtype=torch.float64))).reshape(n, -1)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 4), (7, 7), (8, 6)])
@pytest.mark.parametrize("channels", [(3, 3), (2, 4), (4, 2)])
def test_every_singular_value_is_one_on_every_size(size, channels):
    torch.manual_seed(0)
    c_in, c_out = channels
    m = CayleyConv2d(c_in, c_out, 3, dtype=torch.float64)
    sv = torch.linalg.svdvals(full_matrix(m, (c_in, *size)))
    # an isometry (out >= in) keeps every input norm; with fewer outputs the rows are
    # orthonormal: the nonzero singular values are all 1
    kept = sv[: min(c_in, c_out) * size[0] * size[1]]
    torch.testing.assert_close(kept, torch.ones_like(kept), atol=1e-10, rtol=0)
    bound = lipschitz_bound(m, input_shape=(c_in, *size))
    assert bound == pytest.approx(float(sv.max()), abs=1e-10)


def test_training_keeps_it_orthogonal_and_moves_the_weights():
    torch.manual_seed(0)
    m = CayleyConv2d(4, 4, 3)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    before = m.weight.detach().clone()
    x = torch.randn(8, 4, 6, 6)
    target = torch.randn(8, 4, 6, 6)
    for _ in range(20):
        loss = (m(x) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (m.weight - before).abs().max() > 1e-2
    y = (m(x) - m(torch.zeros_like(x))).detach()  # the linear part (the bias moved too)
    torch.testing.assert_close(
        y.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-4, atol=0
    )
    assert lipschitz_bound(m.double(), input_shape=(4, 6, 6)) == pytest.approx(1.0, abs=1e-9)


def test_without_an_input_size_the_bound_is_refused_by_name():
    net = nn.Sequential(CayleyConv2d(1, 2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    with pytest.raises(TypeError, match="CayleyConv2d is orthogonal on each input size"):
        lipschitz_bound(net)
    assert lipschitz_bound(net, input_shape=(1, 4, 4)) <= 1.0 + 1e-6 + lipschitz_bound(net[2])


def test_a_cayley_classifier_is_certified_with_no_violation():
    torch.manual_seed(0)
    from wgan_lip.layers import MaxMin

    net = nn.Sequential(
        CayleyConv2d(1, 4), MaxMin(), CayleyConv2d(4, 4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )
    x, y = torch.rand(40, 1, 6, 6), torch.randint(0, 3, (40,))
    report = certify(net, x, y, [0.05, 0.2], attack_steps=10, attack_restarts=1)
    assert report.violations == 0
    assert report.lipschitz_bound == pytest.approx(
        lipschitz_bound(net, input_shape=(1, 6, 6)), rel=1e-12
    )
    plain = export_plain(net)
    torch.testing.assert_close(plain(x), net.eval()(x))


def test_evaluation_reuses_the_transform_until_the_kernel_changes(monkeypatch):
    import copy
    import pickle

    import wgan_lip.layers.cayley as cayley

    calls = []
    real = cayley.cayley_frequency_matrices
    monkeypatch.setattr(
        cayley, "cayley_frequency_matrices", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    layer = CayleyConv2d(3, 3).eval()
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        first = layer(x)
        assert torch.equal(layer(x), first) and len(calls) == 1  # computed once
        layer(torch.randn(1, 3, 8, 8))  # another size: recomputed
        assert len(calls) == 2
        layer.weight.add_(0.1)  # an in-place update (as an optimizer step does)
        moved = layer(x)
    assert len(calls) == 3 and not torch.allclose(moved, first)
    # with gradients on, every call computes afresh (the graph needs it)
    layer(x).sum().backward()
    layer(x)
    assert len(calls) == 5
    # the exported layer caches the same way and agrees with the layer
    plain = export_plain(layer)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), plain(x))
        torch.testing.assert_close(plain(x), layer(x))
    # copies start with an empty cache and compute from their own kernel
    twin = copy.deepcopy(layer)
    with torch.no_grad():
        twin.weight.mul_(-1.0)
        assert not torch.allclose(twin(x), layer(x))
        torch.testing.assert_close(pickle.loads(pickle.dumps(layer))(x), layer(x))

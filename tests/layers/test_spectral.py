import torch

from wgan_lip.layers import SpectralConv2d, SpectralLinear
from wgan_lip.models import lipschitz_mlp


def test_spectral_linear_normalizes_the_top_singular_value():
    layer = SpectralLinear(30, 20)
    x = torch.randn(4, 30)
    for _ in range(30):  # power iteration advances in train-mode forwards
        layer(x)
    s = torch.linalg.svdvals(layer.weight.detach().double())
    assert abs(float(s.max()) - 1) < 1e-3
    assert float(s.min()) < 0.9  # not orthogonal: the baseline loses gradient norm


def test_spectral_conv_normalizes_the_operator_norm():
    layer = SpectralConv2d(3, 4, 3).double()
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64)
    for _ in range(30):
        layer(x)
    layer.eval()
    jac = torch.autograd.functional.jacobian(layer, x).reshape(4 * 36, 3 * 36)
    assert abs(float(torch.linalg.svdvals(jac).max()) - 1) < 1e-3


def _grad_norms(net, x):
    x = x.clone().requires_grad_(True)
    net(x).sum().backward()
    return x.grad.norm(dim=1)


def test_groupsort_bjorck_mlp_preserves_gradient_norm_relu_spectral_does_not():
    x = torch.randn(256, 32, dtype=torch.float64)
    gnp = lipschitz_mlp(32, [32, 32, 32], 1).double().eval()
    norms = _grad_norms(gnp, x)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-6)

    sn = lipschitz_mlp(32, [32, 32, 32], 1, activation="relu", linear="spectral").double()
    for _ in range(30):
        sn(x)
    sn.eval()
    assert float(_grad_norms(sn, x).median()) < 0.9


def test_a_spectral_conv_loads_the_probe_of_the_size_it_was_trained_on():
    """The power-iteration probe has the training inputs' size; a fresh layer (8x8 probe)
    must load it, and then compute the very same map."""
    trained = SpectralConv2d(1, 4, 3)
    trained(torch.randn(2, 1, 28, 28))
    fresh = SpectralConv2d(1, 4, 3)
    fresh.load_state_dict(trained.state_dict())
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(trained.eval()(x), fresh.eval()(x))

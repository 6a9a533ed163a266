import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from wgan_lip.layers import BCOPConv2d, SpectralLinear, export_plain, lipschitz_bound
from wgan_lip.models import lipschitz_convnet, lipschitz_mlp


def _train_a_little(net, x):
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(5):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()


@pytest.mark.parametrize("padding", ["circular", "zeros"])
def test_export_of_a_convnet_matches_and_has_no_parametrizations(padding):
    net = lipschitz_convnet(2, 8, (4, 8), 5, padding=padding, kernel_size=3)
    x = torch.rand(6, 2, 8, 8)
    _train_a_little(net, x)
    net.eval()
    plain = export_plain(net)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    assert not any(isinstance(m, BCOPConv2d) for m in plain.modules())
    assert torch.allclose(plain(x), net(x), atol=1e-5)
    assert lipschitz_bound(plain) >= lipschitz_bound(net) - 1e-4  # generic bound is looser


def test_export_of_mlps_and_of_a_single_layer():
    for net in (
        lipschitz_mlp(5, [8, 8], 2),
        lipschitz_mlp(5, [8], 1, linear="spectral"),
        SpectralLinear(5, 3),
    ):
        x = torch.randn(7, 5)
        net(x)
        net.eval()
        plain = export_plain(net)
        assert torch.allclose(plain(x), net(x), atol=1e-6)
        assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    assert type(export_plain(lipschitz_mlp(5, [8], 1)[0])) is torch.nn.Linear
    # the original is left untouched and still trainable
    net = lipschitz_mlp(5, [8], 1)
    export_plain(net)
    assert parametrize.is_parametrized(net[0])
    F.mse_loss(net(torch.randn(2, 5)), torch.zeros(2, 1)).backward()

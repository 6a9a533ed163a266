import pytest
import torch

from wgan_lip.models import lipschitz_convnet, lipschitz_mlp


def test_builders_make_the_requested_shapes():
    assert lipschitz_mlp(3, [8, 8], 2)(torch.randn(5, 3)).shape == (5, 2)
    net = lipschitz_convnet(3, 32, (8, 16), 10, blocks_per_stage=2, head_widths=(32,))
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_builder_errors_are_explicit():
    with pytest.raises(ValueError, match=r"\[6\] are not multiples of group_size 4"):
        lipschitz_mlp(3, [8, 6], group_size=4)
    with pytest.raises(ValueError, match="unknown activation"):
        lipschitz_mlp(3, [8], activation="swish")
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*3"):
        lipschitz_convnet(1, 28, (4, 8, 16))

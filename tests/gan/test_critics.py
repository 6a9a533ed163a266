"""Critics by constraint: shapes, certified bounds, no BatchNorm, paper defaults."""

import pytest
import torch
from torch import nn

from wgan_lip.constraints import get_constraint
from wgan_lip.errors import InputError
from wgan_lip.gan import CONSTRAINT_DEFAULTS, CONSTRAINTS, build_gan_critic
from wgan_lip.layers import BCOPConv2d, BjorckLinear, lipschitz_bound

SHAPES = [(2,), (1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_every_critic_scores_each_sample(constraint, shape):
    kind = "mlp" if len(shape) == 1 else get_constraint(constraint).image_kind
    sizes = {
        "mlp": {"widths": [16, 16]},
        "convnet": {"channels": [4, 8], "widths": [16]},
        "dcgan": {"channels": [8, 16, 32]},
    }
    critic = build_gan_critic(constraint, shape, sizes[kind])
    critic.eval()  # spectral norm's power iteration moves in train mode
    x = torch.rand(5, *shape)
    out = critic(x)
    assert out.shape == (5,)
    # One sample's score does not depend on the rest of the batch (no BatchNorm).
    torch.testing.assert_close(critic(x[:1]), out[:1], rtol=1e-5, atol=1e-6)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_hard_critic_is_built_from_certified_layers_only(shape):
    sizes = {"widths": [16, 16]} if len(shape) == 1 else {"channels": [4, 8], "widths": [16]}
    critic = build_gan_critic("hard", shape, sizes)
    weighted = [m for m in critic.net if any(True for _ in m.parameters())]
    assert weighted and all(isinstance(m, (BjorckLinear, BCOPConv2d)) for m in weighted)
    assert lipschitz_bound(critic) <= 1 + 1e-3  # 1, plus float32 rounding terms
    # and the bound is sound on random pairs
    x, y = torch.rand(64, *shape), torch.rand(64, *shape)
    with torch.no_grad():
        ratio = (critic(x) - critic(y)).abs() / (x - y).flatten(1).norm(dim=1)
    assert float(ratio.max()) <= 1 + 1e-4


def test_spectral_norm_critic_normalizes_every_layer():
    critic = build_gan_critic("sn", (1, 28, 28), {"channels": [8, 16, 32]})
    layers = [m for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    assert any(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.1 for m in critic.modules())


def test_paper_defaults():
    gp, lp, clip, sn = (CONSTRAINT_DEFAULTS[k] for k in ("gp", "lp", "clip", "sn"))
    assert (gp.optimizer, gp.lr, gp.betas, gp.n_critic, gp.penalty_weight) == (
        "adam",
        1e-4,
        (0.0, 0.9),
        5,
        10.0,
    )
    assert lp.penalty_weight == 10.0
    assert (clip.optimizer, clip.lr, clip.clip_value) == ("rmsprop", 5e-5, 0.01)
    assert (sn.lr, sn.betas) == (1e-4, (0.5, 0.9))
    assert CONSTRAINT_DEFAULTS["hard"].penalty_weight == 0 == CONSTRAINT_DEFAULTS["hard"].clip_value


def test_bad_constraint_and_shape_are_clear_errors():
    with pytest.raises(InputError, match="unknown constraint 'wc'"):
        build_gan_critic("wc", (2,))
    with pytest.raises(InputError, match=r"vectors \(d,\) or images"):
        build_gan_critic("gp", (28, 20))
    with pytest.raises(InputError, match="not divisible"):
        build_gan_critic("hard", (1, 10, 10), {"channels": [4, 8]})

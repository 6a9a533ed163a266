"""The constraint registry: one object per constraint, used by W1 estimation and the WGAN."""

import pytest
import torch
from torch import nn

from wgan_lip.constraints import CONSTRAINTS, Constraint, ConstraintDefaults, get_constraint
from wgan_lip.errors import InputError
from wgan_lip.gan import CONSTRAINT_DEFAULTS, WGAN, build_gan_critic
from wgan_lip.gan import CONSTRAINTS as GAN_CONSTRAINTS
from wgan_lip.layers import lipschitz_bound
from wgan_lip.w1.names import CERTIFIED, CRITICS, SINGLE_CRITICS


def test_every_consumer_reads_the_one_registry():
    assert GAN_CONSTRAINTS == tuple(CONSTRAINTS) == ("hard", "gp", "lp", "sn", "clip")
    assert CONSTRAINT_DEFAULTS == {n: c.defaults for n, c in CONSTRAINTS.items()}
    assert set(CRITICS) == {"family", *SINGLE_CRITICS}
    for kind, (constraint, _) in SINGLE_CRITICS.items():
        assert (kind in CERTIFIED) == CONSTRAINTS[constraint].certified
    assert [n for n, c in CONSTRAINTS.items() if c.certified] == ["hard"]


def test_unknown_constraint_is_one_line():
    with pytest.raises(InputError, match="unknown constraint 'nope'; choose one of hard, gp"):
        get_constraint("nope")


@pytest.mark.parametrize("name", list(CONSTRAINTS))
def test_each_constraint_builds_both_critics(name):
    c = CONSTRAINTS[name]
    mlp = c.build({"widths": (8, 8)}, (6,))
    assert mlp(torch.randn(5, 6)).shape == (5, 1)
    sizes = (
        {"channels": (4, 8), "widths": (8,)}
        if c.image_kind == "convnet"
        else {"channels": (4, 8, 16)}
    )
    conv = c.build(sizes, (1, 16, 16))
    assert conv(torch.randn(3, 1, 16, 16)).shape == (3, 1)
    if c.certified:  # 1-Lipschitz by construction, whatever the weights
        for net in (mlp, conv):
            assert lipschitz_bound(net) <= 1 + 1e-3  # 1, plus float32 rounding terms


@pytest.mark.parametrize("name", list(CONSTRAINTS))
def test_penalty_hook_and_optimizer_follow_the_paper(name):
    c = CONSTRAINTS[name]
    net = c.build({"widths": (8,)}, (2,))
    real, fake = torch.randn(16, 2), torch.randn(16, 2) + 2
    penalty = c.penalty(lambda x: net(x).reshape(-1), real, fake, 10.0)
    assert (penalty is not None) == (name in ("gp", "lp"))
    if penalty is not None:
        assert penalty.item() >= 0 and penalty.requires_grad
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
    c.after_step(net, 0.01)
    clipped = all(float(p.abs().max()) <= 0.01 for p in net.parameters())
    assert clipped == (name == "clip")
    opt = c.optimizer(net.parameters(), c.defaults.lr, c.defaults.betas)
    expected = torch.optim.RMSprop if c.defaults.optimizer == "rmsprop" else torch.optim.Adam
    assert type(opt) is expected and opt.defaults["lr"] == c.defaults.lr


def test_one_spectral_norm_for_vectors_and_images():
    """``sn`` normalizes with the library's own power iteration, never torch's hooks."""
    sn = CONSTRAINTS["sn"]
    for net in (sn.build({"widths": (8,)}, (4,)), sn.build({"channels": (4, 8, 16)}, (1, 16, 16))):
        layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        assert layers and all(hasattr(m, "parametrizations") for m in layers)
        assert not any(m._forward_pre_hooks for m in layers)
        net.train()
        for _ in range(100):  # power iterations converge: each layer's norm nears 1
            net(
                torch.randn(2, 4) if isinstance(layers[0], nn.Linear) else torch.randn(2, 1, 16, 16)
            )
        for m in layers:
            w = m.weight.detach().flatten(1)
            assert torch.linalg.matrix_norm(w, ord=2) == pytest.approx(1.0, rel=1e-2)


def test_a_new_constraint_is_one_registered_object(monkeypatch):
    """What adding a constraint takes: a subclass and a registry entry; the WGAN needs
    nothing else."""

    class HalfWeights(Constraint):
        name = "half"
        defaults = ConstraintDefaults("adam", 1e-3, (0.5, 0.9), 2)

        def after_step(self, critic, clip_value):
            with torch.no_grad():
                for p in critic.parameters():
                    p.mul_(0.5)

    monkeypatch.setitem(CONSTRAINTS, "half", HalfWeights())
    critic = build_gan_critic("half", (2,), {"widths": (8,)})
    assert critic(torch.randn(4, 2)).shape == (4,)
    module = WGAN(
        constraint="half",
        data_shape=(2,),
        architecture={"generator_widths": (8,), "critic": {"widths": (8,)}},
    )
    assert module.settings.n_critic == 2 and module.settings.lr == 1e-3


def test_hard_refuses_layers_that_are_not_certified_by_name():
    """A constraint that certifies never assumes: an uncertified layer is refused by name."""
    hard = CONSTRAINTS["hard"]
    for spec, name in (({"linear": "plain"}, "plain"), ({"linear": "spectral"}, "spectral")):
        with pytest.raises(InputError, match=f"{name} is not"):
            hard.build(spec, (4,))
    with pytest.raises(InputError, match="plain is not"):
        hard.build({"conv": "plain"}, (1, 8, 8))
    with pytest.raises(InputError, match="plain layers are not"):
        CONSTRAINTS["sn"].build({"linear": "plain"}, (4,))

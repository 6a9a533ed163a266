"""Critic-guided sampling (latent DOT): what it moves, what it leaves alone, and the module."""

import pytest
import torch
from torch import nn

from wgan_lip.errors import InputError
from wgan_lip.gan import WGAN, exact_w1_metric, latent_lipschitz, refine_latents

from .helpers import image_data, params, small_image_wgan, small_toy_wgan, tiny_images, toy_data
from .helpers import trainer as make_trainer


def _linear(matrix: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(matrix.shape[1], matrix.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(matrix)
    return layer


def _peak(center: torch.Tensor):
    """A 1-Lipschitz critic whose highest point is ``center``."""
    return lambda x: -(x - center).norm(dim=1)


def test_latent_lipschitz_approaches_the_true_constant_from_below():
    torch.manual_seed(0)
    generator = _linear(torch.randn(5, 3))
    critic = _linear(torch.randn(1, 5))
    true = float(torch.linalg.matrix_norm(critic.weight @ generator.weight, ord=2).detach())
    est = latent_lipschitz(generator, critic, 3, pairs=4000, seed=1)
    assert 0.9 * true < est <= true + 1e-5
    assert est == latent_lipschitz(generator, critic, 3, pairs=4000, seed=1)
    with pytest.raises(ValueError, match="pairs"):
        latent_lipschitz(generator, critic, 3, pairs=0)


def test_free_latents_climb_the_critic_and_priced_ones_stay():
    generator = _linear(2 * torch.eye(2))  # f o G is 2-Lipschitz in latent space
    critic = _peak(torch.tensor([6.0, 0.0]))
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    free = refine_latents(generator, critic, z, steps=60, lr=0.05, k_eff=0.0)
    gain = critic(generator(free)) - critic(generator(z))
    assert bool((gain > 0.5).all())
    # Priced above the constant, every move costs more than the critic gains: the optimum is
    # the start, so Adam only jitters around it (each step moves a coordinate by ~lr).
    priced = refine_latents(generator, critic, z, steps=60, lr=0.05, k_eff=4.0)
    assert float((priced - z).norm(dim=1).max()) < 0.2
    assert float((free - z).norm(dim=1).min()) > 1.0


def test_refinement_touches_only_the_latents():
    generator = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4))
    critic = nn.Sequential(nn.Linear(4, 1))
    before = params(generator) + params(critic)
    z = torch.randn(10, 3)
    z_copy = z.clone()
    moved = refine_latents(generator, critic, z, steps=5, lr=0.01, k_eff=0.1, batch_size=4)
    assert moved.shape == z.shape and not moved.requires_grad
    assert torch.equal(z, z_copy) and not torch.equal(moved, z)
    after = params(generator) + params(critic)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert all(p.grad is None for p in [*generator.parameters(), *critic.parameters()])
    # rows move independently: a batch of 4 gives the same rows as one of 10
    again = refine_latents(generator, critic, z, steps=5, lr=0.01, k_eff=0.1, batch_size=10)
    torch.testing.assert_close(moved, again)
    assert torch.equal(refine_latents(generator, critic, z, steps=0, k_eff=0.1), z)


def test_refinement_works_inside_no_grad_and_inference_mode():
    generator, critic = _linear(torch.eye(2)), _peak(torch.tensor([3.0, 3.0]))
    expected = refine_latents(generator, critic, torch.zeros(3, 2), steps=5, k_eff=0.5)
    with torch.no_grad():
        assert torch.equal(
            refine_latents(generator, critic, torch.zeros(3, 2), steps=5, k_eff=0.5), expected
        )
    with torch.inference_mode():
        z = torch.zeros(3, 2)  # an inference tensor, as in a Lightning validation hook
        assert torch.equal(refine_latents(generator, critic, z, steps=5, k_eff=0.5), expected)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(steps=-1, k_eff=1.0), "steps"),
        (dict(steps=1, k_eff=-1.0), "k_eff"),
        (dict(steps=1, k_eff=1.0, lr=0.0), "lr"),
    ],
)
def test_bad_refinement_settings_are_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        refine_latents(nn.Identity(), _peak(torch.zeros(2)), torch.zeros(2, 2), **kw)


def test_module_generate_refines_deterministically_and_raises_the_critic():
    module = small_toy_wgan("hard", refine_steps=20, refine_lr=0.02)
    make_trainer(30).fit(module, datamodule=toy_data())
    module.critic.train(), module.generator.train()
    refined = module.generate(200)
    plain = module.generate(200, refine_steps=0)
    assert module.critic.training and module.generator.training  # flags restored
    assert torch.equal(refined, module.generate(200))
    assert not torch.equal(refined, plain)
    with torch.no_grad():
        module.critic.eval()
        assert float(module.critic(refined).mean()) > float(module.critic(plain).mean())
    with pytest.raises(InputError, match="refine_steps"):
        module.generate(5, refine_steps=-1)


def test_refinement_settings_are_checked_and_not_part_of_the_checkpoint_match(tmp_path):
    with pytest.raises(InputError, match="refine_steps"):
        WGAN("hard", sampling={"refine_steps": -2})
    with pytest.raises(InputError, match="refine_lr"):
        WGAN("hard", sampling={"refine_lr": 0.0})
    module = small_image_wgan("hard")
    trainer = make_trainer(4, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=image_data(tiny_images(tmp_path / "x.npy")))
    trainer.save_checkpoint(tmp_path / "plain.ckpt")
    loaded = WGAN.load_from_checkpoint(tmp_path / "plain.ckpt", sampling={"refine_steps": 3})
    assert loaded.hparams.sampling["refine_steps"] == 3
    assert not torch.equal(loaded.generate(6), loaded.generate(6, refine_steps=0))
    assert torch.equal(loaded.generate(6, refine_steps=0), module.generate(6))


def test_the_critics_own_dual_value_scores_the_plain_samples():
    module = small_toy_wgan("hard", refine_steps=10, refine_lr=0.02)
    dm = toy_data()
    make_trainer(30).fit(module, datamodule=dm)
    real = dm.val_set
    metrics = module.evaluate(real)
    refined, plain = module.generate(len(real)), module.generate(len(real), refine_steps=0)
    with torch.no_grad():
        critic = module.critic.eval()
        on_plain = float(critic(real).mean() - critic(plain).mean())
        on_refined = float(critic(real).mean() - critic(refined).mean())
    assert metrics["critic_dual"] == pytest.approx(on_plain, rel=1e-5)
    assert on_refined < on_plain  # the refined samples were pushed up this critic
    # the distances to the data are the refined samples' (what generate gives)
    assert metrics["exact_w1"] == pytest.approx(exact_w1_metric(refined, real, max_samples=300))

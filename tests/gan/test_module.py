"""The WGAN module: steps, constraints, penalties, NaN stop, checkpoints and resume."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from wgan_lip.errors import InputError
from wgan_lip.gan import CONSTRAINTS, WGAN
from wgan_lip.layers import lipschitz_bound
from wgan_lip.penalties import gradient_penalty

from .helpers import image_data, params, small_image_wgan, small_toy_wgan, tiny_images, toy_data
from .helpers import trainer as make_trainer


class Record(L.Callback):
    """Collects the critic losses and, for hard critics, the bound after every critic step."""

    def __init__(self, check_bound: bool) -> None:
        self.check_bound, self.bounds, self.losses = check_bound, [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(float(trainer.callback_metrics["train/critic_loss"]))
        if self.check_bound:
            self.bounds.append(lipschitz_bound(module.critic))


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_each_constraint_trains_with_finite_losses_and_own_step_counters(constraint):
    module = small_toy_wgan(constraint)
    rec = Record(check_bound=constraint == "hard")
    trainer = make_trainer(24, callbacks=[rec])
    trainer.fit(module, datamodule=toy_data())
    # global_step counts both optimizers: 20 critic steps + 4 generator steps (n_critic 5)
    assert (module.critic_step, module.generator_step, trainer.global_step) == (20, 4, 24)
    assert len(rec.losses) == 20 and all(torch.isfinite(torch.tensor(rec.losses)))
    if constraint == "hard":
        assert max(rec.bounds) <= 1 + 1e-4
    if constraint == "clip":
        assert all(float(p.abs().max()) <= 0.01 + 1e-8 for p in module.critic.parameters())


def test_hard_image_critic_stays_certified_throughout(tmp_path):
    module = small_image_wgan("hard")
    rec = Record(check_bound=True)
    dm = image_data(tiny_images(tmp_path / "x.npy"))
    make_trainer(12, callbacks=[rec]).fit(module, datamodule=dm)
    assert len(rec.bounds) == 10 and max(rec.bounds) <= 1 + 1e-4


def test_critic_steps_leave_the_generator_alone():
    module = small_toy_wgan("gp", n_critic=10)
    before = params(module.generator)
    make_trainer(4).fit(module, datamodule=toy_data())  # 4 critic steps, no generator step
    assert module.generator_step == 0
    assert all(torch.equal(a, b) for a, b in zip(before, params(module.generator), strict=True))
    assert all(p.grad is None for p in module.generator.parameters())


def test_generator_step_adds_no_gradient_to_the_critic():
    module = small_toy_wgan("gp", n_critic=1)
    grads = {}

    class Spy(L.Callback):
        def on_before_optimizer_step(self, trainer, m, optimizer):
            which = "critic" if optimizer is trainer.optimizers[0] else "generator"
            grads[which] = [
                None if p.grad is None else p.grad.clone() for p in m.critic.parameters()
            ]

    make_trainer(2, callbacks=[Spy()]).fit(module, datamodule=toy_data())
    assert module.generator_step == 1
    assert all(g is not None for g in grads["critic"])
    # the critic's gradients when the generator steps are exactly its own step's
    assert all(torch.equal(a, b) for a, b in zip(grads["critic"], grads["generator"], strict=True))


def test_gradient_penalty_is_per_sample():
    # f(x) = |x|^2 / 2 has gradient x: per-sample norms |x_i| differ from sample to sample.
    def critic(x):
        return 0.5 * x.pow(2).sum(dim=1)

    x = torch.tensor([[3.0, 4.0], [0.6, 0.8], [0.0, 2.0]])
    # real == fake: every interpolate is the sample itself
    got = gradient_penalty(critic, x, x.clone(), weight=10.0)
    expected = 10.0 * ((x.norm(dim=1) - 1) ** 2).mean()  # (16 + 0 + 1) / 3 * 10
    torch.testing.assert_close(got, expected)
    batch_norm = 10.0 * (x.norm() - 1) ** 2  # what a batch-level gradient norm would give
    assert not torch.isclose(got, batch_norm)
    one_sided = gradient_penalty(critic, x, x.clone(), weight=10.0, one_sided=True)
    torch.testing.assert_close(one_sided, expected)  # norms 5, 1, 2: none below 1 counts
    y = x * 0.1  # norms 0.5, 0.1, 0.2: below 1, so the one-sided penalty vanishes
    assert float(gradient_penalty(critic, y, y.clone(), 10.0, one_sided=True)) == 0.0


def test_nan_loss_stops_training_naming_the_step():
    dm = toy_data()
    dm.setup()
    dm.train_set[:] = float("nan")
    module = small_toy_wgan("hard", check_finite_every=3)
    with pytest.raises(FloatingPointError, match=r"critic loss is nan at critic step 1 "):
        make_trainer(50).fit(module, datamodule=dm)
    assert module.critic_step == 3  # stopped at the first check, not at the end


class Killed(RuntimeError):
    pass


class KillAt(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            raise Killed(f"killed at {trainer.global_step}")


def _checkpointed(tmp_path, max_steps, *extra):
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=6)
    return make_trainer(max_steps, callbacks=[ckpt, *extra], enable_checkpointing=True)


def test_killed_run_resumes_to_the_same_step_count(tmp_path):
    with pytest.raises(Killed):
        _checkpointed(tmp_path, 36, KillAt(15)).fit(small_toy_wgan("hard"), datamodule=toy_data())
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 12 and saved["wgan_steps"] == {"critic": 10, "generator": 2}

    resumed = small_toy_wgan("hard")
    trainer = _checkpointed(tmp_path, 36)
    trainer.fit(resumed, datamodule=toy_data(), ckpt_path="last")
    straight = small_toy_wgan("hard")
    reference = make_trainer(36)
    reference.fit(straight, datamodule=toy_data())
    got = (resumed.critic_step, resumed.generator_step, trainer.global_step)
    uninterrupted = (straight.critic_step, straight.generator_step, reference.global_step)
    assert got == uninterrupted == (30, 6, 36)


def test_linear_schedule_decays_both_learning_rates_to_zero():
    module = small_toy_wgan("gp", schedule="linear")
    trainer = make_trainer(24)
    trainer.fit(module, datamodule=toy_data())
    opt_c, opt_g = trainer.optimizers
    assert opt_c.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_checkpoint_of_another_config_is_a_clear_error(tmp_path):
    _checkpointed(tmp_path, 12).fit(small_toy_wgan("hard"), datamodule=toy_data())
    with pytest.raises(InputError, match=r"constraint=hard \(config: gp\)"):
        make_trainer(24).fit(
            small_toy_wgan("gp"), datamodule=toy_data(), ckpt_path=tmp_path / "last.ckpt"
        )
    with pytest.raises(InputError, match=r"critic.widths=\[32, 32\] \(config: \[16, 16\]\)"):
        narrower = small_toy_wgan("hard", critic={"widths": [16, 16]})
        make_trainer(24).fit(narrower, datamodule=toy_data(), ckpt_path=tmp_path / "last.ckpt")


def test_bad_settings_are_clear_errors():
    with pytest.raises(InputError, match="unknown constraint"):
        WGAN("wgan")
    with pytest.raises(InputError, match="lr_schedule"):
        WGAN("hard", optimizer={"schedule": "cosine"})
    with pytest.raises(InputError, match="n_critic"):
        WGAN("hard", optimizer={"n_critic": 0})


def test_generator_ema_averages_the_raw_generator_and_samples():
    module = small_toy_wgan("gp", ema_decay=0.9)
    before = params(module.generator)
    make_trainer(24).fit(module, datamodule=toy_data())
    raw, ema = params(module.generator), params(module.generator_ema)
    assert not any(p.requires_grad for p in module.generator_ema.parameters())
    # the average lies between the start and the trained weights, and differs from both
    assert all(not torch.equal(e, r) for e, r in zip(ema, raw, strict=True))
    assert all(not torch.equal(e, b) for e, b in zip(ema, before, strict=True))
    assert module.sampler is module.generator_ema
    z = torch.randn(5, 2)
    module.eval()
    assert torch.equal(module(z), module.generator_ema(z))
    with pytest.raises(InputError, match="ema_decay"):
        WGAN("hard", sampling={"ema_decay": 1.0})


def test_ema_setting_is_part_of_the_checkpoint_match(tmp_path):
    _checkpointed(tmp_path, 12).fit(small_toy_wgan("hard", ema_decay=0.9), datamodule=toy_data())
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert any(k.startswith("generator_ema.") for k in saved["state_dict"])
    with pytest.raises(InputError, match=r"ema_decay=0.9 \(config: 0.0\)"):
        make_trainer(24).fit(
            small_toy_wgan("hard"), datamodule=toy_data(), ckpt_path=tmp_path / "last.ckpt"
        )
    resumed = small_toy_wgan("hard", ema_decay=0.9)
    make_trainer(24).fit(resumed, datamodule=toy_data(), ckpt_path=tmp_path / "last.ckpt")
    assert resumed.generator_step == 4


class CriticInputs(L.Callback):
    """Records every batch the critic scores, and whose step it was (critic or generator)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, torch.Tensor]] = []

    def on_train_start(self, trainer, module):
        def spy(_, args):
            self.calls.append((module.critic_step, args[0].detach().clone()))

        module.critic.register_forward_pre_hook(spy)


@pytest.mark.parametrize("n_critic", [1, 3])
def test_reuse_fakes_scores_the_critic_steps_fakes_in_the_generator_step(n_critic):
    module = small_toy_wgan("hard", n_critic=n_critic, reuse_fakes=True)  # no penalty calls
    spy = CriticInputs()
    make_trainer(2 * (n_critic + 1), callbacks=[spy]).fit(module, datamodule=toy_data())
    assert module.generator_step == 2
    batches = spy.calls  # critic steps score 128 (real + fake), generator steps 64
    for i, (step, x) in enumerate(batches):
        if len(x) == 64:  # a generator step: the fakes of the critic step just before it
            _, before = batches[i - 1]
            assert len(before) == 128 and step % n_critic == 0
            torch.testing.assert_close(x, before[64:], rtol=0, atol=0)
    assert sum(len(x) == 64 for _, x in batches) == 2


def test_reuse_fakes_leaves_the_generator_out_of_the_critic_step():
    module = small_toy_wgan("gp", n_critic=1, reuse_fakes=True)
    seen: list[tuple[str, list]] = []

    class Spy(L.Callback):
        def on_before_optimizer_step(self, trainer, m, optimizer):
            which = "critic" if optimizer is trainer.optimizers[0] else "generator"
            seen.append(
                (
                    which,
                    [None if p.grad is None else p.grad.clone() for p in m.generator.parameters()],
                )
            )

    make_trainer(6, callbacks=[Spy()]).fit(module, datamodule=toy_data())
    assert [w for w, _ in seen] == ["critic", "generator"] * 3
    assert all(g is None for g in seen[0][1])  # nothing before the first generator step
    for k in (2, 4):  # a critic step leaves the generator's gradients as its last step did
        assert all(torch.equal(a, b) for a, b in zip(seen[k][1], seen[k - 1][1], strict=True))
    assert all(g is not None and bool(g.abs().sum() > 0) for g in seen[1][1])


def test_reuse_fakes_trains_the_hard_image_critic_certified(tmp_path):
    module = small_image_wgan("hard", n_critic=1, reuse_fakes=True)
    rec = Record(check_bound=True)
    dm = image_data(tiny_images(tmp_path / "x.npy"))
    make_trainer(12, callbacks=[rec]).fit(module, datamodule=dm)
    assert module.generator_step == 6 and max(rec.bounds) <= 1 + 1e-4

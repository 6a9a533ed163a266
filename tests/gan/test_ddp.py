"""A WGAN trained by 2 CPU processes under DDP: same global objective, one evaluation."""

import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy

from wgan_lip.layers import lipschitz_bound
from wgan_lip.w1.estimate import _fork_safe_threads

from .helpers import params, small_toy_wgan, toy_data, trainer


@pytest.mark.parametrize(
    ("constraint", "reuse_fakes", "refine_steps"),
    [("hard", False, 0), ("gp", False, 0), ("hard", True, 3)],
)
def test_two_process_wgan_trains_and_evaluates_all_held_out_samples(
    constraint, reuse_fakes, refine_steps
):
    torch.manual_seed(0)
    module = small_toy_wgan(
        constraint,
        samples=300,
        estimate_steps=0,
        reuse_fakes=reuse_fakes,
        refine_steps=refine_steps,
    )
    dm = toy_data(n_train=640, n_val=300)  # 10 batches of 32 per process: 2 epochs
    before = params(module.generator)
    strategy = DDPStrategy(start_method="fork")  # the WGAN turns on find_unused_parameters
    t = trainer(24, devices=2, strategy=strategy, limit_val_batches=None)  # validates per epoch
    with _fork_safe_threads(t):
        t.fit(module, datamodule=dm)
    metrics = {k: float(v) for k, v in t.callback_metrics.items()}
    assert metrics["train/generator_step"] == 4.0  # 20 critic + 4 generator steps
    changed = [not torch.equal(a, b) for a, b in zip(before, params(module.generator), strict=True)]
    assert any(changed)  # the trained weights came back from process 0
    # The last validation ran on the final weights over the two processes' shares of the
    # held-out set; the main process, with every held-out sample, finds the same numbers
    # (with refine_steps, from the same critic-guided samples).
    dm.setup("fit")
    real = torch.cat([b[0] if isinstance(b, (list, tuple)) else b for b in dm.val_dataloader()])
    assert len(real) == 300
    direct = module.evaluate(real)
    assert metrics["val/exact_w1"] == pytest.approx(direct["exact_w1"], rel=1e-5)
    assert metrics["val/critic_dual"] == pytest.approx(direct["critic_dual"], rel=1e-4, abs=1e-6)
    if constraint == "hard":
        assert lipschitz_bound(module.critic) <= 1 + 1e-4
        assert metrics["val/lipschitz_bound"] == pytest.approx(lipschitz_bound(module.critic))

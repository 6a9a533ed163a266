"""Multi-process training (DDP, 2 CPU processes with gloo) gives single-process results."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from wgan_lip import estimate_w1
from wgan_lip.data import Translation
from wgan_lip.models import lipschitz_mlp
from wgan_lip.w1 import W1Critic, kr_dual
from wgan_lip.w1.data import TwoSampleDataModule
from wgan_lip.w1.estimate import _fork_safe_threads
from wgan_lip.w1.loss import global_kr_dual

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed missing")

# One global batch of 7 P and 7 Q samples, split very unevenly over 2 processes:
# process 0 holds 6 P and no Q, process 1 holds 1 P and 7 Q.
SPLITS = {0: (slice(0, 6), slice(0, 0)), 1: (slice(6, 7), slice(0, 7))}


def _batch_and_critic():
    g = torch.Generator().manual_seed(0)
    xp = torch.randn(7, 5, generator=g, dtype=torch.float64)
    xq = torch.randn(7, 5, generator=g, dtype=torch.float64) + 1
    torch.manual_seed(1)
    return xp, xq, lipschitz_mlp(5, (16, 16), 1).double()


def _worker(rank: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        xp, xq, critic = _batch_and_critic()
        ddp = DistributedDataParallel(critic)
        sp, sq = SPLITS[rank]
        scores = ddp(torch.cat([xp[sp], xq[sq]])).reshape(-1)
        objective, value = global_kr_dual(
            scores[: sp.stop - sp.start], scores[sp.stop - sp.start :]
        )
        (-objective).backward()  # DDP averages the gradients of the 2 processes
        grads = [p.grad.detach().clone() for p in critic.parameters()]
        torch.save({"value": value, "grads": grads}, f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()


def test_global_objective_and_gradients_equal_one_process_on_the_same_batch(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path / "out")), nprocs=2)
    xp, xq, critic = _batch_and_critic()
    scores = critic(torch.cat([xp, xq])).reshape(-1)
    dual = kr_dual(scores[:7], scores[7:])
    (-dual).backward()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"out.{rank}")
        torch.testing.assert_close(got["value"], dual.detach(), rtol=1e-13, atol=1e-13)
        for g, p in zip(got["grads"], critic.parameters(), strict=True):
            torch.testing.assert_close(g, p.grad, rtol=1e-12, atol=1e-13)


def test_one_process_objective_is_the_plain_dual():
    f_p, f_q = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.5])
    objective, value = global_kr_dual(f_p, f_q)
    assert float(objective) == float(value) == float(kr_dual(f_p, f_q))


def _problem(n=2000):
    t = Translation(3, 1.0)
    return t.sample_p(n, 0), t.sample_q(n, 0)


def test_estimator_with_two_processes_matches_one_process():
    """Same seed: same split, same global batches; only float summation order differs."""
    p, q = _problem()
    kw = dict(steps=120, batch_size=101, progress=False, seed=2)
    one = estimate_w1(p, q, trainer={"accelerator": "cpu", "devices": 1}, **kw)
    two = estimate_w1(
        p, q, trainer={"accelerator": "cpu", "devices": 2}, **kw
    )  # ddp_fork: 2 CPU processes, gloo
    assert two.steps == one.steps == 120
    assert (two.n_holdout_p, two.n_holdout_q) == (one.n_holdout_p, one.n_holdout_q)
    assert two.lipschitz_bound <= 1 + 1e-4
    assert abs(two.value - one.value) < 1e-3, (two.value, one.value)
    assert abs(two.value - one.value) < 0.1 * (one.ci_high - one.ci_low)


def test_estimator_with_three_processes_on_a_small_split():
    """More processes than evaluation chunks: a process without rows scores an empty chunk."""
    p, q = _problem(300)
    critic = {"eval_every": 20, "family": ("linear", "peaks")}
    trainer = {"devices": 3, "accelerator": "cpu"}
    est = estimate_w1(p, q, critic=critic, trainer=trainer, steps=40, progress=False)
    assert est.steps == 40 and est.n_holdout_p == est.n_holdout_q == 60
    assert 0.5 < est.value <= 1.5 and est.lipschitz_bound <= 1 + 1e-6


def test_held_out_scoring_is_reduced_across_processes():
    """The Lightning test loop: each process scores a share, the sums are all-reduced."""
    import lightning as L

    p, q = _problem(900)
    dm = TwoSampleDataModule(p, q, holdout=0.3, eval_batch_size=50, seed=0)
    torch.manual_seed(0)
    module = W1Critic("groupsort", input_shape=(3,), network={"widths": [16]})
    module.critic.fit_normalization(torch.cat(dm.part("fit")))
    results = {}
    for devices in (1, 2):
        trainer = L.Trainer(
            accelerator="cpu",
            devices=devices,
            strategy="ddp_fork" if devices > 1 else "auto",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        with _fork_safe_threads(trainer):
            results[devices] = trainer.test(module, datamodule=dm, verbose=False)[0]
    for key in ("test/w1", "test/ci_low", "test/ci_high", "test/lip"):
        assert results[2][key] == pytest.approx(results[1][key], rel=1e-6, abs=1e-7), key
    # and both equal the direct computation on the whole held-out part
    from wgan_lip.w1 import dual_stats

    critic = module.critic.member(0)  # the family of one's critic, in the data's units
    value, _, _ = dual_stats(critic, *dm.part("holdout")).interval(results[1]["test/lip"])
    assert results[2]["test/w1"] == pytest.approx(value, rel=1e-6)

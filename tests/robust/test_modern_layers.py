"""AOL and SLL classifiers, the HKR loss and the cosine schedule: trained models keep their
bound, and PGD never breaks a certificate."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from wgan_lip.errors import InputError
from wgan_lip.layers import empirical_lipschitz, export_plain, lipschitz_bound
from wgan_lip.models import aol_convnet, sll_convnet
from wgan_lip.robust import certify, hkr_loss, kr_multiclass, multiclass_hinge
from wgan_lip.robust.module import LipschitzClassifier


def _stripes(n: int = 384, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 one-channel images of three classes: bright top rows, left columns, or dark."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = 0.15 * torch.rand(n, 1, 8, 8, generator=g)
    x[y == 0, :, :3, :] += 0.7
    x[y == 1, :, :, :3] += 0.7
    return x.clamp(0, 1), y


@pytest.mark.parametrize("builder", [aol_convnet, sll_convnet], ids=["aol", "sll"])
def test_trained_convnet_keeps_its_promise_and_no_certificate_breaks(builder):
    torch.manual_seed(0)
    net = builder(1, 8, (4, 8), 3, blocks_per_stage=2, head_widths=(16, 16))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = _stripes()
    for _ in range(60):
        loss = hkr_loss(net(x), y, eps=0.5, kr_weight=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    bound = lipschitz_bound(net)
    assert bound <= 1.01  # each layer promises 1
    assert empirical_lipschitz(net, x[:32]) <= bound * (1 + 1e-4)
    xt, yt = _stripes(150, seed=1)
    report = certify(net, xt, yt, [0.1, 0.3, 0.6], attack_steps=20, attack_restarts=2)
    assert report.clean > 0.9
    assert report.violations == 0
    for r in report.radii:
        assert r.certified <= r.attacked + 1e-12
    assert report.radii[0].certified > 0.5
    torch.testing.assert_close(export_plain(net)(xt), net(xt), atol=1e-5, rtol=1e-5)


def test_kr_term_is_the_one_vs_rest_mean_gap():
    logits = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # class 0: (2 + 1) / 2 - 0 = 1.5; class 1: (3 + 1) / 2 - (0 + 1) / 2 = 1.5
    assert float(kr_multiclass(logits, labels)) == pytest.approx(1.5)
    # one class only: no gap is defined for it, and none for the empty class
    assert float(kr_multiclass(logits[:2], labels[:2])) == 0.0
    hinge = multiclass_hinge(logits, labels, 0.5)
    assert float(hkr_loss(logits, labels, 0.5, kr_weight=0.2)) == pytest.approx(
        float(hinge) - 0.2 * 1.5
    )
    with pytest.raises(ValueError, match="kr_weight"):
        hkr_loss(logits, labels, 0.5, kr_weight=-1.0)


def test_classifier_builds_the_new_architectures_and_refuses_bad_settings():
    for arch in ("aol", "sll"):
        m = LipschitzClassifier(
            arch,
            input_shape=(1, 8, 8),
            num_classes=3,
            network={"channels": [4], "widths": [16]},
            objective={"loss": "hkr"},
        )
        assert m(torch.rand(2, 1, 8, 8)).shape == (2, 3)
        assert m.lipschitz_bound() <= 1 + 1e-3  # 1, plus float32 rounding terms
    with pytest.raises(InputError, match="divisible"):
        LipschitzClassifier(
            "sll", input_shape=(1, 6, 6), num_classes=3, network={"channels": [4, 8]}
        )
    with pytest.raises(InputError, match="lr_schedule"):
        LipschitzClassifier(lr_schedule="linear")
    with pytest.raises(InputError, match="kr_weight"):
        LipschitzClassifier(objective={"kr_weight": -0.5})


class _Data(L.LightningDataModule):
    def train_dataloader(self):
        x, y = _stripes(256)
        return torch.utils.data.DataLoader(list(zip(x, y, strict=True)), batch_size=32)


def test_cosine_schedule_decays_to_zero_over_the_steps():
    model = LipschitzClassifier(
        "aol",
        input_shape=(1, 8, 8),
        num_classes=3,
        lr=1e-2,
        network={"channels": [4], "widths": []},
        lr_schedule="cosine",
    )
    lrs: list[float] = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = L.Trainer(
        max_steps=16,
        accelerator="cpu",
        logger=False,
        callbacks=[Record()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=_Data())
    assert lrs[0] == pytest.approx(1e-2)
    assert lrs[8] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 8 / 16)))
    assert lrs[-1] < 1e-3


def test_cosine_schedule_follows_the_time_budget_when_there_is_one():
    from lightning.pytorch.callbacks import Timer

    class FakeTimer(Timer):
        def __init__(self, elapsed: float, remaining: float) -> None:
            super().__init__(duration="00:00:01:00")
            self._e, self._r = elapsed, remaining

        def time_elapsed(self, stage="train"):
            return self._e

        def time_remaining(self, stage="train"):
            return self._r

    class FakeTrainer:
        estimated_stepping_batches = 10**9  # a time budget: the step count is meaningless

        def __init__(self, timer):
            self.callbacks = [timer]

    model = LipschitzClassifier(
        "aol",
        input_shape=(1, 8, 8),
        num_classes=3,
        network={"channels": [4], "widths": []},
        lr_schedule="cosine",
    )
    for elapsed, expected in (
        (0.0, 1.0),
        (15.0, 0.5 * (1 + math.cos(math.pi / 4))),
        (30.0, 0.5),
        (60.0, 0.0),
    ):
        model._trainer = FakeTrainer(FakeTimer(elapsed, 60.0 - elapsed))
        assert model._cosine_factor(step=3) == pytest.approx(expected, abs=1e-12)

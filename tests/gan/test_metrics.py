"""Metrics: direct functions, and the module's logged values agree with them."""

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from wgan_lip import exact_w1
from wgan_lip.gan import (
    FeatureNet,
    certified_w1_metric,
    classifier_fid_kid,
    exact_w1_metric,
    generate,
    save_feature_net,
    subsample,
)

from .helpers import image_data, small_image_wgan, small_toy_wgan, tiny_images, toy_data
from .helpers import trainer as make_trainer


def test_subsample_is_fixed_by_the_seed():
    x = torch.arange(100.0)[:, None]
    assert torch.equal(subsample(x, 10, seed=3), subsample(x, 10, seed=3))
    assert not torch.equal(subsample(x, 10, seed=3), subsample(x, 10, seed=4))
    assert torch.equal(subsample(x, 200), x)
    assert len(set(subsample(x, 50).flatten().tolist())) == 50  # without replacement


def test_exact_w1_metric_is_pot_on_the_subsamples():
    g = torch.Generator().manual_seed(0)
    fake, real = torch.randn(700, 2, generator=g), torch.randn(900, 2, generator=g) + 1
    got = exact_w1_metric(fake, real, max_samples=500, seed=2)
    direct = exact_w1(subsample(fake, 500, 2).numpy(), subsample(real, 500, 3).numpy())
    assert got == pytest.approx(direct, rel=1e-12)


def test_certified_metric_is_a_lower_bound_near_the_truth():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(3000, 2, generator=g)
    fake = real + torch.tensor([0.6, 0.8])  # a translation: W1 = 1
    est = certified_w1_metric(fake, real, steps=300)
    assert est.certified and est.lipschitz_bound <= 1 + 1e-4
    assert est.ci_low <= 1.0 and est.value > 0.9


def test_generate_is_reproducible_and_restores_train_mode():
    module = small_image_wgan("gp")
    module.generator.train()
    a = generate(module.generator, 10, 8, seed=5)
    b = generate(module.generator, 10, 8, seed=5)
    assert torch.equal(a, b) and a.shape == (10, 1, 8, 8)
    assert module.generator.training
    assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_classifier_fid_is_zero_for_identical_sets_and_grows_with_a_shift():
    net = FeatureNet(1, 8, 2, feature_dim=16)
    g = torch.Generator().manual_seed(0)
    real = torch.rand(400, 1, 8, 8, generator=g)
    same = classifier_fid_kid(real, real, net, kid_subset_size=100)
    assert abs(same["classifier_fid"]) < 1e-3 and abs(same["kid"]) < 1e-3
    darker = classifier_fid_kid(real * 0.5, real, net, kid_subset_size=100)
    assert darker["classifier_fid"] > 10 * max(abs(same["classifier_fid"]), 1e-4)
    assert darker["kid"] > 0


def _val_fit(module, dm, tmp_path, logger=False):
    trainer = make_trainer(
        12,
        limit_val_batches=None,
        val_check_interval=10,
        check_val_every_n_epoch=None,
        logger=logger,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=dm)
    return trainer


def test_logged_toy_metrics_agree_with_direct_calls(tmp_path):
    module = small_toy_wgan("hard", estimate_steps=50)
    dm = toy_data()
    trainer = _val_fit(module, dm, tmp_path, logger=CSVLogger(tmp_path))
    logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    real = dm.val_set
    fake = module.generate(len(real))
    assert logged["val/exact_w1"] == pytest.approx(exact_w1_metric(fake, real, max_samples=300))
    est = certified_w1_metric(fake, real, steps=50, max_samples=300)
    assert logged["val/estimate_w1"] == pytest.approx(est.value, rel=1e-5)
    with torch.no_grad():
        dual = float(module.critic.eval()(real).mean() - module.critic(fake).mean())
    assert logged["val/critic_dual"] == pytest.approx(dual, rel=1e-5)
    assert logged["val/lipschitz_bound"] <= 1 + 1e-4
    assert logged["val/critic_w1_certified"] == pytest.approx(
        dual / logged["val/lipschitz_bound"], rel=1e-5
    )
    # the certified dual value of a 1-Lipschitz critic never exceeds the exact W1 of the samples
    w1_all = exact_w1(real.numpy(), fake.numpy())
    assert logged["val/critic_w1_certified"] <= w1_all + 1e-6
    # the scatter over the critic's level sets was written by the CSV logger run
    assert list(tmp_path.rglob("images/samples_*.png"))


def test_baselines_log_no_certified_value(tmp_path):
    module = small_toy_wgan("gp")
    trainer = _val_fit(module, toy_data(), tmp_path)
    assert "val/critic_dual" in trainer.callback_metrics
    assert "val/critic_w1_certified" not in trainer.callback_metrics


def test_logged_image_metrics_agree_with_direct_calls(tmp_path):
    net = FeatureNet(1, 8, 2, feature_dim=16)
    path = save_feature_net(net, tmp_path / "features.pt")
    module = small_image_wgan("sn", feature_net=str(path), kid_subset_size=20)
    dm = image_data(tiny_images(tmp_path / "x.npy"))
    trainer = _val_fit(module, dm, tmp_path, logger=CSVLogger(tmp_path))
    real = dm.val_set
    direct = classifier_fid_kid(module.generate(len(real)), real, net, kid_subset_size=20)
    for key in ("classifier_fid", "kid"):
        assert float(trainer.callback_metrics[f"val/{key}"]) == pytest.approx(direct[key], rel=1e-4)
    grids = list(tmp_path.rglob("images/samples_*.png"))
    assert grids
    from PIL import Image

    assert np.asarray(Image.open(grids[0])).ndim == 3

"""The WGAN's networks as one spec: YAML binding, checkpoints of the older flat layout, and
the one wrapper shared with W1 critics."""

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from wgan_lip.cli import main
from wgan_lip.critic import RawInputCritic
from wgan_lip.errors import InputError
from wgan_lip.gan import WGAN
from wgan_lip.gan.architecture import FIELDS, GANArchitecture, migrate_hparams

from .helpers import small_toy_wgan, toy_data
from .helpers import trainer as make_trainer
from .test_configs import _toy


def _old_layout(path, out):
    """Rewrite a checkpoint as the releases before the spec wrote it: the architecture keys
    flat among the hyperparameters, and no normalization buffers in the critic."""
    ckpt = torch.load(path, weights_only=False)
    hp = ckpt["hyper_parameters"]
    hp.update(hp.pop("architecture"))
    for key in ("critic.shift", "critic.scale"):
        del ckpt["state_dict"][key]
    torch.save(ckpt, out)
    return ckpt


def test_spec_defaults_dicts_and_unknown_keys():
    spec = GANArchitecture.of({"critic_widths": [8, 8]})
    assert spec.critic_widths == (8, 8) and spec.latent_dim is None
    assert GANArchitecture.of(None) == GANArchitecture()
    assert spec.for_shape((2,)).latent_dim == 2 and spec.for_shape((1, 8, 8)).latent_dim == 128
    assert GANArchitecture.of(spec.as_dict()) == spec
    with pytest.raises(InputError, match=r"unknown key\(s\) critic_width; the keys are"):
        WGAN("hard", architecture={"critic_width": 8})


def test_migrate_moves_flat_keys_and_keeps_the_rest():
    old = {"constraint": "gp", "critic_widths": [4], "latent_dim": 3, "eval_seed": 1}
    arch = {"critic_widths": [4], "latent_dim": 3}
    assert migrate_hparams(old) == {"constraint": "gp", "eval_seed": 1, "architecture": arch}
    new = {"constraint": "gp", "architecture": {"critic_widths": [4]}}
    assert migrate_hparams(new) == new


@pytest.mark.parametrize("constraint", ["hard", "gp"])
def test_gan_critic_is_the_w1_wrapper_with_identity_normalization(constraint):
    module = small_toy_wgan(constraint)
    assert isinstance(module.critic, RawInputCritic)
    assert module.critic.certified == (constraint == "hard")
    x = torch.randn(16, 2)
    assert torch.equal(module.critic(x), module.critic.net(x).reshape(-1))


def test_checkpoint_in_the_old_flat_layout_loads_and_resumes(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=6)
    module = small_toy_wgan("hard", critic_widths=(16, 16))
    make_trainer(12, callbacks=[ckpt], enable_checkpointing=True).fit(module, datamodule=toy_data())
    old = _old_layout(tmp_path / "last.ckpt", tmp_path / "old.ckpt")
    assert set(FIELDS) <= set(old["hyper_parameters"])

    loaded = WGAN.load_from_checkpoint(tmp_path / "old.ckpt")
    assert loaded.architecture.critic_widths == (16, 16)
    x = torch.randn(32, 2)
    assert torch.allclose(loaded.critic.eval()(x), module.critic.eval()(x), atol=1e-6)

    resumed = small_toy_wgan("hard", critic_widths=(16, 16))
    make_trainer(24).fit(resumed, datamodule=toy_data(), ckpt_path=tmp_path / "old.ckpt")
    assert (resumed.critic_step, resumed.generator_step) == (20, 4)
    with pytest.raises(InputError, match=r"critic_widths=\[16, 16\] \(config: \[32, 32\]\)"):
        make_trainer(24).fit(small_toy_wgan("hard"), datamodule=toy_data(),
                             ckpt_path=tmp_path / "old.ckpt")  # fmt: skip


def test_cli_binds_the_spec_and_names_where_old_keys_went(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    widths = "--model.architecture.critic_widths=[8, 8]"
    assert main(["fit", *_toy("--trainer.max_steps=72", widths)]) == 0
    last = tmp_path / "runs/gan/toy_25gaussians_hard/checkpoints/last.ckpt"
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["hyper_parameters"]["architecture"]["critic_widths"] == [8, 8]
    loaded = WGAN.load_from_checkpoint(last)
    assert loaded.architecture.critic_widths == (8, 8)
    capsys.readouterr()

    old = tmp_path / "old.yaml"
    old.write_text("model:\n  init_args:\n    critic_widths: [8, 8]\n")
    code = main(["fit", *_toy("--trainer.default_root_dir=other"), "--config", str(old)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "option 'critic_widths' is not accepted" in err[0]
    assert "write it under model.init_args.architecture (critic_widths: ...)" in err[0]
    assert not (tmp_path / "other").exists()


def test_mlp_image_critic_scores_flattened_pixels_and_stays_certified():
    spec = GANArchitecture(latent_dim=8, image_critic="mlp", critic_widths=(16, 16))
    critic = spec.build_critic("hard", (1, 8, 8))
    assert critic.flatten and critic.certified
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(critic(x), critic.net(x.flatten(1)).reshape(-1))
    from wgan_lip.layers import lipschitz_bound

    assert lipschitz_bound(critic) <= 1 + 1e-4
    assert spec.build_generator((1, 8, 8))(torch.randn(3, 8)).shape == (3, 1, 8, 8)
    with pytest.raises(InputError, match="image_critic must be conv or mlp"):
        GANArchitecture(image_critic="resnet")


def test_feature_net_stays_out_of_checkpoints_and_old_ones_still_load(tmp_path):
    from wgan_lip.gan import FeatureNet, save_feature_net

    save_feature_net(FeatureNet(1, 8, 10), tmp_path / "f.pt")
    module = small_toy_wgan("hard", feature_net=str(tmp_path / "f.pt"))
    trainer = make_trainer(6)
    trainer.fit(module, datamodule=toy_data())
    assert module._feature_net is not None
    assert not any(k.startswith("_feature_net") for k in module.state_dict())
    assert "_feature_net" not in dict(module.named_modules())
    # a checkpoint written while the feature net was a submodule
    state = {**module.state_dict(), "_feature_net.head.weight": torch.zeros(10, 4)}
    fresh = small_toy_wgan("hard")
    fresh.load_state_dict(state)
    key = "critic.net.0.parametrizations.weight.original"
    assert torch.equal(fresh.state_dict()[key], module.state_dict()[key])


def _channels_last_convs(net: torch.nn.Module) -> bool:
    convs = [m for m in net.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    return bool(convs) and all(
        c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs
    )


def test_image_generator_runs_channels_last_with_the_same_values_and_keys():
    from wgan_lip.models import dcgan_generator

    torch.manual_seed(3)
    plain = dcgan_generator(16, 1, 28, 8)  # the layout of checkpoints written before
    arch = GANArchitecture(latent_dim=16, generator_base_channels=8)
    generator = arch.build_generator((1, 28, 28))
    generator.load_state_dict(plain.state_dict())  # an old checkpoint loads as it is
    assert _channels_last_convs(generator)
    assert generator.state_dict().keys() == plain.state_dict().keys()
    z = torch.randn(6, 16)
    torch.testing.assert_close(generator(z), plain(z), rtol=1e-5, atol=1e-6)
    # the moving average keeps the format through a deep copy and a lerp
    import copy

    average = copy.deepcopy(generator)
    with torch.no_grad():
        torch._foreach_lerp_(list(average.parameters()), list(generator.parameters()), 0.5)
    assert _channels_last_convs(average)
    torch.testing.assert_close(average(z), generator(z), rtol=1e-5, atol=1e-6)

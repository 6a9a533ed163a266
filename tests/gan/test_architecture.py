"""The WGAN's options as sections and its critic as a network spec: YAML binding, checkpoints
and configs of the older flat layout, and the one wrapper shared with W1 critics."""

from dataclasses import replace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from wgan_lip.cli import main
from wgan_lip.constraints import get_constraint
from wgan_lip.critic import RawInputCritic
from wgan_lip.errors import InputError
from wgan_lip.gan import WGAN, build_gan_critic
from wgan_lip.gan.architecture import MOVED_OPTIONS, GANArchitecture, migrate_hparams
from wgan_lip.networks import NetworkSpec

from .helpers import image_data, small_toy_wgan, tiny_images, toy_data
from .helpers import trainer as make_trainer
from .test_configs import _toy


def _old_layout(path, out):
    """Rewrite a checkpoint as the releases before the spec wrote it: every option flat among
    the hyperparameters, the critic as flat ``critic_*`` fields, and no normalization buffers
    in the critic."""
    ckpt = torch.load(path, weights_only=False)
    hp = ckpt["hyper_parameters"]
    critic = hp["architecture"].pop("critic")
    hp["architecture"].update(critic_widths=critic["widths"], group_size=critic["group_size"])
    hp.update(hp.pop("architecture"))
    for section in ("optimizer", "sampling", "evaluation"):
        values = hp.pop(section)
        for old, new in MOVED_OPTIONS.items():
            if new.startswith(section + "."):
                hp[old] = values[new.partition(".")[2]]
    for key in ("critic.shift", "critic.scale"):
        del ckpt["state_dict"][key]
    torch.save(ckpt, out)
    return ckpt


def test_spec_defaults_dicts_and_unknown_keys():
    spec = GANArchitecture.of({"critic": {"widths": [8, 8]}})
    assert spec.critic.widths == (8, 8) and spec.latent_dim is None
    assert GANArchitecture.of(None) == GANArchitecture()
    assert spec.for_shape((2,)).latent_dim == 2 and spec.for_shape((1, 8, 8)).latent_dim == 128
    assert GANArchitecture.of(spec.as_dict()) == spec
    with pytest.raises(InputError, match=r"unknown key\(s\) critic_width; the keys are"):
        WGAN("hard", architecture={"critic_width": 8})
    with pytest.raises(InputError, match=r"^architecture.critic_widths moved: write archi"):
        WGAN("hard", architecture={"critic_widths": [8]})
    with pytest.raises(InputError, match=r"network: unknown key\(s\) depth"):
        WGAN("hard", architecture={"critic": {"depth": 3}})


def test_migrate_moves_flat_keys_and_keeps_the_rest():
    old = {
        "constraint": "gp",
        "data_shape": [2],
        "critic_widths": [4],
        "latent_dim": 3,
        "eval_seed": 1,
        "lr_critic": 0.1,
        "ema_decay": 0.5,
    }
    # a ReLU baseline does not read a group size: the migrated spec leaves it out
    arch = {"latent_dim": 3, "critic": {"kind": "mlp", "widths": [4]}}
    assert migrate_hparams(old) == {
        "constraint": "gp",
        "data_shape": [2],
        "architecture": arch,
        "optimizer": {"lr": 0.1},
        "sampling": {"ema_decay": 0.5},
        "evaluation": {"seed": 1},
    }
    new = {"constraint": "gp", "architecture": {"critic": {"widths": [4]}}}
    assert migrate_hparams(new) == new


# The critic fields of the older layout, and the spec each constraint's critic had.
OLD_CRITICS = [
    ("hard", [2], {"critic_widths": [16, 8], "group_size": 4}),
    ("gp", [2], {"critic_widths": [16]}),
    ("hard", [1, 8, 8], {"critic_channels": [4, 8], "critic_head_width": 16}),
    ("hard", [1, 8, 8], {"critic_widths": [16], "image_critic": "mlp"}),
    ("sn", [1, 16, 16], {"critic_base_channels": 8}),
    ("clip", [1, 16, 16], {"critic_channels": [4], "critic_base_channels": 4}),
    ("lp", [1, 16, 16], {}),
]
FULL_OLD_DEFAULTS = {
    "critic_widths": [256, 256, 256],
    "critic_channels": [16, 32],
    "critic_head_width": 128,
    "critic_base_channels": 64,
    "group_size": 2,
    "image_critic": "conv",
}


@pytest.mark.parametrize(("constraint", "shape", "old"), OLD_CRITICS)
def test_old_critic_fields_build_the_same_critic_bit_for_bit(constraint, shape, old):
    """An older checkpoint's hyperparameters (every critic field written, as the older spec
    wrote them) give the critic those fields built: same modules, same weights."""
    hparams = {
        "constraint": constraint,
        "data_shape": shape,
        "architecture": {"latent_dim": 8, **FULL_OLD_DEFAULTS, **old},
    }
    migrated = migrate_hparams(hparams)
    torch.manual_seed(0)
    critic = GANArchitecture.of(migrated["architecture"]).build_critic(constraint, shape)
    image = len(shape) == 3 and old.get("image_critic", "conv") == "conv"
    kind = get_constraint(constraint).image_kind if image else "mlp"
    a = {**FULL_OLD_DEFAULTS, **old}
    if kind == "mlp":
        spec = NetworkSpec("mlp", widths=a["critic_widths"])
    elif kind == "convnet":
        spec = NetworkSpec(kind, channels=a["critic_channels"], widths=[a["critic_head_width"]])
    else:
        b = a["critic_base_channels"]
        spec = NetworkSpec(kind, channels=(b, 2 * b, 4 * b))
    torch.manual_seed(0)  # what the older GANArchitecture.build_critic built
    if get_constraint(constraint).certified:  # the baselines' networks never read it
        spec = replace(spec, group_size=a["group_size"])
    reference = build_gan_critic(constraint, shape, spec)
    assert [type(m).__name__ for m in critic.modules()] == [
        type(m).__name__ for m in reference.modules()
    ]
    state, ref = critic.state_dict(), reference.state_dict()
    assert state.keys() == ref.keys()
    assert all(torch.equal(state[k], ref[k]) for k in ref)


def _short_fit(make, data) -> dict[str, torch.Tensor]:
    L.seed_everything(0, verbose=False)
    module = make()
    make_trainer(12).fit(module, datamodule=data)
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _old_flat(constraint, **flat):
    """A WGAN from the hyperparameters of an older checkpoint, as the loader migrates them."""
    hparams = migrate_hparams({"constraint": constraint, **flat})
    return WGAN(**{k: v for k, v in hparams.items()})


FIT_CASES = {
    "toy_hard": (
        lambda: _old_flat(
            "hard",
            data_shape=[2],
            critic_widths=[32, 32],
            group_size=4,
            generator_widths=[32, 32],
            n_critic=2,
            lr_critic=1e-3,
            lr_generator=2e-3,
            betas=[0.5, 0.9],
            ema_decay=0.9,
            reuse_fakes=True,
            eval_samples=300,
        ),
        lambda: WGAN(
            "hard",
            data_shape=(2,),
            architecture={
                "critic": {"widths": [32, 32], "group_size": 4},
                "generator_widths": [32, 32],
            },
            optimizer={"n_critic": 2, "lr": 1e-3, "generator_lr": 2e-3, "betas": (0.5, 0.9)},
            sampling={"ema_decay": 0.9, "reuse_fakes": True},
            evaluation={"samples": 300},
        ),
        False,
    ),
    "toy_gp_linear": (
        lambda: _old_flat(
            "gp",
            data_shape=[2],
            critic_widths=[16],
            generator_widths=[16],
            penalty_weight=5.0,
            lr_schedule="linear",
        ),
        lambda: WGAN(
            "gp",
            data_shape=(2,),
            architecture={"critic": {"widths": [16]}, "generator_widths": [16]},
            optimizer={"penalty_weight": 5.0, "schedule": "linear"},
        ),
        False,
    ),
    "image_hard": (
        lambda: _old_flat(
            "hard",
            data_shape=[1, 8, 8],
            latent_dim=8,
            critic_channels=[4, 8],
            critic_head_width=16,
            generator_base_channels=8,
        ),
        lambda: WGAN(
            "hard",
            data_shape=(1, 8, 8),
            architecture={
                "latent_dim": 8,
                "critic": {"channels": [4, 8], "widths": [16]},
                "generator_base_channels": 8,
            },
        ),
        True,
    ),
    "image_sn": (
        lambda: _old_flat(
            "sn",
            data_shape=[1, 8, 8],
            latent_dim=8,
            critic_base_channels=8,
            generator_base_channels=8,
            clip_value=None,
        ),
        lambda: WGAN(
            "sn",
            data_shape=(1, 8, 8),
            architecture={
                "latent_dim": 8,
                "critic": {"channels": [8, 16, 32]},
                "generator_base_channels": 8,
            },
        ),
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_a_short_fit_is_bit_identical_with_the_sections_and_the_old_flat_options(case, tmp_path):
    """The grouped sections train exactly what the older flat options (as an older
    checkpoint's hyperparameters migrate) trained: same seed, same generator and critic
    weights after a few steps. (Checked once against the code before the sections too.)"""
    old, new, image = FIT_CASES[case]
    if image:
        data = lambda: image_data(tiny_images(tmp_path / "x.npy", n=128))  # noqa: E731
    else:
        data = toy_data
    before, after = _short_fit(old, data()), _short_fit(new, data())
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), case


@pytest.mark.parametrize("constraint", ["hard", "gp"])
def test_gan_critic_is_the_w1_wrapper_with_identity_normalization(constraint):
    module = small_toy_wgan(constraint)
    assert isinstance(module.critic, RawInputCritic)
    assert module.critic.certified == (constraint == "hard")
    x = torch.randn(16, 2)
    assert torch.equal(module.critic(x), module.critic.net(x).reshape(-1))


def test_checkpoint_in_the_old_flat_layout_loads_and_resumes(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=6)
    module = small_toy_wgan("hard", critic={"widths": [16, 16]}, ema_decay=0.5)
    make_trainer(12, callbacks=[ckpt], enable_checkpointing=True).fit(module, datamodule=toy_data())
    old = _old_layout(tmp_path / "last.ckpt", tmp_path / "old.ckpt")
    assert {"critic_widths", "lr_critic", "ema_decay", "eval_samples"} <= set(
        old["hyper_parameters"]
    )

    loaded = WGAN.load_from_checkpoint(tmp_path / "old.ckpt")
    assert loaded.architecture.critic.widths == (16, 16)
    assert (loaded.sampling.ema_decay, loaded.evaluation.samples) == (0.5, 300)
    x = torch.randn(32, 2)
    assert torch.allclose(loaded.critic.eval()(x), module.critic.eval()(x), atol=1e-6)
    # an override of one key keeps the section's others; an older flat name still works
    refined = WGAN.load_from_checkpoint(tmp_path / "old.ckpt", sampling={"refine_steps": 2})
    assert (refined.sampling.refine_steps, refined.sampling.ema_decay) == (2, 0.5)
    flat = WGAN.load_from_checkpoint(tmp_path / "old.ckpt", refine_steps=3)
    assert (flat.sampling.refine_steps, flat.sampling.ema_decay) == (3, 0.5)

    resumed = small_toy_wgan("hard", critic={"widths": [16, 16]}, ema_decay=0.5)
    make_trainer(24).fit(resumed, datamodule=toy_data(), ckpt_path=tmp_path / "old.ckpt")
    assert (resumed.critic_step, resumed.generator_step) == (20, 4)
    with pytest.raises(InputError, match=r"critic.widths=\[16, 16\] \(config: \[32, 32\]\)"):
        make_trainer(24).fit(
            small_toy_wgan("hard", ema_decay=0.5),
            datamodule=toy_data(),
            ckpt_path=tmp_path / "old.ckpt",
        )


def test_cli_binds_the_spec_and_names_where_old_keys_went(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    widths = "--model.architecture.critic.widths=[8, 8]"
    assert (
        main(
            [
                "fit",
                *_toy(
                    "--trainer.max_steps=72",
                    widths,
                    "--model.architecture.critic.activation=maxmin",
                ),
            ]
        )
        == 0
    )
    last = tmp_path / "runs/gan/toy_25gaussians_hard/checkpoints/last.ckpt"
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["hyper_parameters"]["architecture"]["critic"]["widths"] == [8, 8]
    loaded = WGAN.load_from_checkpoint(last)
    assert loaded.architecture.critic.widths == (8, 8)
    assert type(loaded.critic.net[1]).__name__ == "MaxMin"
    capsys.readouterr()

    for yaml, old, new in [
        (
            "architecture:\n      critic_widths: [8, 8]",
            "critic_widths",
            "architecture.critic (widths",
        ),
        ("architecture:\n      image_critic: mlp", "image_critic", "architecture.critic (kind"),
        ("critic_widths: [8, 8]", "critic_widths", "architecture.critic (widths"),
        ("lr_critic: 0.001", "lr_critic", "optimizer (lr"),
        ("eval_samples: 10", "eval_samples", "evaluation (samples"),
        ("ema_decay: 0.9", "ema_decay", "sampling (ema_decay"),
    ]:
        path = tmp_path / "old.yaml"
        path.write_text(f"model:\n  init_args:\n    {yaml}\n")
        code = main(["fit", *_toy("--trainer.default_root_dir=other"), "--config", str(path)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert f"option '{old}' is not accepted" in err[0]
        assert f"write it under model.init_args.{new}: ...)" in err[0], err[0]
        assert "Traceback" not in err[0]
        assert not (tmp_path / "other").exists()


def test_any_registered_layer_reaches_the_critic_and_hard_refuses_uncertified_ones(tmp_path):
    """YAML ``architecture: {critic: {kind: convnet, conv: cayley, activation: maxmin}}``."""
    arch = {
        "latent_dim": 8,
        "generator_base_channels": 8,
        "critic": {
            "kind": "convnet",
            "conv": "cayley",
            "activation": "maxmin",
            "channels": [4],
            "widths": [8],
        },
    }
    module = WGAN("hard", data_shape=(1, 8, 8), architecture=arch)
    names = [type(m).__name__ for m in module.critic.net]
    assert names[:2] == ["CayleyConv2d", "MaxMin"] and module.critic.certified
    with pytest.raises(InputError, match=r"hard constraint certifies only.*plain is not"):
        WGAN("hard", data_shape=(2,), architecture={"critic": {"linear": "plain"}})
    gp = WGAN("gp", data_shape=(2,), architecture={"critic": {"linear": "aol", "widths": [8]}})
    assert type(gp.critic.net[0]).__name__ != "Linear"


def test_mlp_image_critic_scores_flattened_pixels_and_stays_certified():
    spec = GANArchitecture(latent_dim=8, critic={"kind": "mlp", "widths": [16, 16]})
    critic = spec.build_critic("hard", (1, 8, 8))
    assert critic.flatten and critic.certified
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(critic(x), critic.net(x.flatten(1)).reshape(-1))
    from wgan_lip.layers import lipschitz_bound

    assert lipschitz_bound(critic) <= 1 + 1e-4
    assert spec.build_generator((1, 8, 8))(torch.randn(3, 8)).shape == (3, 1, 8, 8)
    with pytest.raises(InputError, match="unknown network kind 'resnet'"):
        GANArchitecture(critic={"kind": "resnet"})


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

"""The classifier's network is a NetworkSpec over a preset; old flat options and checkpoints
keep working, to the bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wgan_lip.cli import main
from wgan_lip.errors import InputError
from wgan_lip.layers import GroupSort, MaxMin
from wgan_lip.layers.registry import LAYERS
from wgan_lip.models import lipschitz_convnet, lipschitz_mlp, sll_convnet
from wgan_lip.networks import NetworkSpec
from wgan_lip.robust.checkpoint import load_classifier
from wgan_lip.robust.module import PRESETS, LipschitzClassifier, migrate_hparams

SHAPE = (1, 8, 8)
X = torch.rand(6, *SHAPE, generator=torch.Generator().manual_seed(1))

# old flat hparams (as save_hyperparameters stored them) and the same classifier, new form
OLD_AND_NEW = {
    "fc3": (
        {
            "widths": [32, 16],
            "activation": "maxmin",
            "group_size": 2,
            "loss": "hkr",
            "eps_train": 1.0,
            "kr_weight": 0.2,
            "eval_eps": [0.5],
            "eval_linf": [0.05],
        },
        {
            "network": {"widths": [32, 16]},
            "objective": {"loss": "hkr", "eps_train": 1.0, "kr_weight": 0.2},
            "eval_radii": {"l2": [0.5], "linf": [0.05]},
        },
    ),
    "bcop": (
        {
            "widths": [16],
            "channels": [4, 8],
            "blocks_per_stage": 2,
            "activation": "maxmin",
            "group_size": 2,
        },
        {"network": {"widths": [16], "channels": [4, 8], "blocks_per_stage": 2}},
    ),
    "aol": (
        {
            "widths": [16],
            "channels": [4],
            "blocks_per_stage": 1,
            "activation": "relu",
            "group_size": 4,
        },  # the convnets ignored activation: GroupSort(group_size)
        {
            "network": {
                "widths": [16],
                "channels": [4],
                "blocks_per_stage": 1,
                "activation": "groupsort",
                "group_size": 4,
            }
        },
    ),
    "sll": (
        {
            "widths": [16, 16],
            "channels": [4, 8],
            "blocks_per_stage": 2,
            "loss": "xent",
            "temperature": 0.5,
        },
        {
            "network": {"widths": [16, 16], "channels": [4, 8]},
            "objective": {"loss": "xent", "temperature": 0.5},
        },
    ),
}


def _made(seed: int = 0, **kwargs) -> LipschitzClassifier:
    torch.manual_seed(seed)
    return LipschitzClassifier(input_shape=SHAPE, num_classes=3, **kwargs).eval()


def _same(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with torch.no_grad():
        assert torch.equal(a(X), b(X))


@pytest.mark.parametrize("arch", list(OLD_AND_NEW))
def test_old_flat_hparams_give_the_same_classifier_to_the_bit(arch, tmp_path):
    old, new = OLD_AND_NEW[arch]
    migrated = migrate_hparams({"architecture": arch, **old})
    a, b = _made(**migrated), _made(architecture=arch, **new)
    _same(a, b)
    assert a.objective == b.objective and a.eval_radii == b.eval_radii
    # a checkpoint of the old form loads (certify's loader and Lightning's) to the very logits
    # of the new form's checkpoint
    hp = {
        "architecture": arch,
        "input_shape": list(SHAPE),
        "num_classes": 3,
        "lr": 1e-3,
        "lr_schedule": "step",
        "epochs_decay": [],
        **old,
    }
    paths = {}
    for form, saved in (("old", hp), ("new", dict(b.hparams))):
        paths[form] = tmp_path / f"{form}.ckpt"
        torch.save(
            {
                "state_dict": b.state_dict(),
                "hyper_parameters": saved,
                "pytorch-lightning_version": "2.4.0",
            },
            paths[form],
        )
    for load in (load_classifier, lambda p: LipschitzClassifier.load_from_checkpoint(p).eval()):
        # seeded: a Björck layer's power iteration warm-starts from the vector of its random
        # initial weights, so two loads of one file agree to the bit only from one seed
        torch.manual_seed(3)
        old_model = load(paths["old"])
        torch.manual_seed(3)
        new_model = load(paths["new"])
        _same(old_model, new_model)
        assert old_model.objective == b.objective and old_model.eval_radii == b.eval_radii
        assert not old_model.training


def test_new_checkpoints_hold_the_complete_network():
    clf = _made(architecture="sll", network={"channels": [4], "widths": [8]})
    net = clf.hparams.network
    assert net["conv"] == "sll" and net["blocks_per_stage"] == 2 and net["kernel_size"] == 3
    again = LipschitzClassifier("fc3", input_shape=SHAPE, num_classes=3, network=net)
    assert again.network == clf.network  # the preset named no longer matters


def test_presets_build_the_networks_of_the_old_builders():
    """fc3 and the convnets are what lipschitz_mlp / lipschitz_convnet / sll_convnet built;
    MaxMin, the presets' activation, is GroupSort(2) to the bit."""
    torch.manual_seed(0)
    old_fc3 = nn.Sequential(nn.Flatten(), *lipschitz_mlp(64, (32,), 3, activation="maxmin"))
    _same(_made(architecture="fc3", network={"widths": [32]}).net, old_fc3.eval())
    torch.manual_seed(0)
    old_bcop = lipschitz_convnet(1, 8, (4, 8), 3, blocks_per_stage=2, head_widths=(16,))
    new_bcop = _made(
        architecture="bcop", network={"channels": [4, 8], "widths": [16], "blocks_per_stage": 2}
    )
    assert any(isinstance(m, GroupSort) for m in old_bcop)
    assert any(isinstance(m, MaxMin) for m in new_bcop.net)
    _same(new_bcop.net, old_bcop.eval())
    torch.manual_seed(0)
    old_sll = sll_convnet(1, 8, (4,), 3, head_widths=(8, 8))  # blocks_per_stage 2, as the preset
    _same(
        _made(architecture="sll", network={"channels": [4], "widths": [8, 8]}).net, old_sll.eval()
    )
    assert PRESETS["fc3"].widths == (1024, 1024, 1024)


def test_every_certified_layer_and_activation_reaches_the_classifier():
    relu = _made(
        architecture="bcop", network={"channels": [4], "widths": [8], "activation": "relu"}
    )
    assert sum(isinstance(m, nn.ReLU) for m in relu.net) == 2  # conv stage and head
    for name, kind in LAYERS.items():
        if not kind.certified:
            continue
        if kind.conv is not None:
            net = {"kind": "convnet", "conv": name, "channels": [4], "widths": [8]}
        else:
            net = {"kind": "mlp", "linear": name, "widths": [8]}
        clf = _made(architecture="bcop", network=net)
        assert clf(X).shape == (6, 3)
        assert clf.lipschitz_bound() <= 1 + 1e-3, name


@pytest.mark.parametrize(
    "network",
    [{"linear": "plain"}, {"linear": "spectral"}, {"kind": "convnet", "conv": "sn_kernel"}],
)
def test_uncertified_layers_are_refused_by_name(network):
    bad = network.get("conv", network.get("linear"))
    with pytest.raises(InputError, match=f"{bad} is not: use one of"):
        LipschitzClassifier("fc3", network=network)


def test_a_bad_network_section_is_one_clear_error():
    with pytest.raises(InputError, match="network: unknown key"):
        LipschitzClassifier("fc3", network={"head_widths": [8]})
    with pytest.raises(InputError, match="unknown architecture"):
        LipschitzClassifier("resnet")
    assert LipschitzClassifier(network=NetworkSpec(widths=(8,))).network.widths == (8,)


def test_at_most_twelve_init_parameters():
    import inspect

    params = inspect.signature(LipschitzClassifier.__init__).parameters
    assert len(params) - 1 <= 12


def test_an_old_flat_option_names_its_new_place(capsys):
    for option, place in (
        ("--model.widths=[8]", "model.init_args.network (widths"),
        ("--model.eps_train=1.0", "model.init_args.objective (eps_train"),
        ("--model.eval_eps=[1.0]", "model.init_args.eval_radii (l2"),
    ):
        code = main(
            [
                "fit",
                "--model=wgan_lip.robust.LipschitzClassifier",
                "--data=wgan_lip.robust.ClassificationDataModule",
                option,
                "--print_config",
            ]
        )
        assert code == 2
        assert place in capsys.readouterr().err

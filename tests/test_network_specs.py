"""A network spec is read strictly: wrong types, unknown names and fields the network would
not read are one-line errors in every job, never silently ignored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wgan_lip.cli import main
from wgan_lip.errors import InputError
from wgan_lip.gan import build_gan_critic
from wgan_lip.networks import LIBRARY_DEFAULTS, NetworkSpec, build, check_fields, only_used
from wgan_lip.w1 import build_critic


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"bias": "no"}, "bias must be true or false"),
        ({"negative_slope": "x"}, "negative_slope must be a number"),
        ({"negative_slope": 2.0}, "negative_slope must be a number in"),
        ({"linear": 3}, "linear must be a registered name"),
        ({"widths": [0]}, "widths must be positive"),
        ({"kind": "resnet"}, "unknown network kind"),
        ({"padding": "reflect"}, "padding must be circular or zeros"),
    ],
)
def test_bad_values_are_refused_when_the_spec_is_made(fields, match):
    with pytest.raises(InputError, match=match):
        NetworkSpec.of(fields)


@pytest.mark.parametrize(
    ("fields", "unused"),
    [
        ({"kernel_size": 5}, "kernel_size"),  # an mlp has no convolution
        ({"conv": "nosuch"}, "conv"),
        ({"channels": [4]}, "channels"),
        ({"activation": "relu", "group_size": 4}, "group_size"),  # ReLU sorts nothing
        ({"negative_slope": 0.1}, "negative_slope"),  # GroupSort has no slope
    ],
)
def test_a_field_the_network_does_not_read_is_refused_by_name(fields, unused):
    user = NetworkSpec.of(fields)
    with pytest.raises(InputError, match=f"network: {unused} is not used by an mlp"):
        check_fields(user, user.over(LIBRARY_DEFAULTS))


def test_layer_options_are_checked_against_the_layer_that_reads_them():
    cayley = NetworkSpec("convnet", conv="cayley", padding="zeros")
    with pytest.raises(InputError, match="padding is not used by an convnet of cayley"):
        check_fields(cayley, cayley.over(LIBRARY_DEFAULTS))
    sll = NetworkSpec("convnet", conv="sll", linear="sll", bias=False)
    with pytest.raises(InputError, match="bias is not used"):
        check_fields(sll, sll.over(LIBRARY_DEFAULTS))
    dcgan = NetworkSpec("dcgan", conv="plain", linear="plain", kernel_size=5)
    with pytest.raises(InputError, match="kernel_size is not used by an dcgan"):
        check_fields(dcgan, dcgan.over(LIBRARY_DEFAULTS))
    # what a layer reads is honoured: AOL with circular padding
    aol = NetworkSpec("convnet", conv="aol", linear="aol", padding="circular", channels=(4,))
    check_fields(aol, aol.over(LIBRARY_DEFAULTS))
    net = build(aol, (1, 8, 8), 2)
    assert net[0].padding_mode == "circular"


def test_a_stored_spec_holds_only_what_its_network_reads():
    full = NetworkSpec("mlp", activation="relu", linear="plain").over(LIBRARY_DEFAULTS)
    kept = only_used(full)
    assert kept.channels is None and kept.group_size is None and kept.kernel_size is None
    check_fields(kept, full)  # reloading it passes the check
    torch.manual_seed(0)
    a = build(full, (3,), 1)
    torch.manual_seed(0)
    b = build(kept, (3,), 1)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_a_w1_critic_of_another_kind_takes_that_kinds_sizes():
    """A W1 baseline asked for the DCGAN kind gets the DCGAN critic, as the WGAN does, not
    the MLP's hidden widths as a head."""
    torch.manual_seed(0)
    w1 = build_critic("gp", (1, 16, 16), {"kind": "dcgan"})
    torch.manual_seed(0)
    gan = build_gan_critic("gp", (1, 16, 16))
    assert [type(m).__name__ for m in w1.net] == [type(m).__name__ for m in gan.net]
    hard = build_critic("groupsort", (1, 8, 8), {"kind": "convnet"})
    assert [m.out_features for m in hard.net if hasattr(m, "out_features")] == [128, 1]


def test_a_wgan_refuses_images_that_are_not_square():
    with pytest.raises(InputError, match="H = W"):
        build_gan_critic("gp", (1, 8, 16))


@pytest.mark.parametrize(
    "flags",
    [
        ["--critic", "bcop", "--network", '{"conv": "aol", "kernel_size": 4}'],
        [
            "--critic",
            "groupsort",
            "--network",
            '{"activation": "leaky_relu", "negative_slope": "x"}',
        ],
        ["--critic", "groupsort", "--conv", "nosuch"],
        ["--critic", "groupsort", "--network", '{"bias": "no"}'],
    ],
)
def test_the_w1_command_refuses_a_bad_network_in_one_line(flags, tmp_path, capsys):
    image = flags[1] == "bcop"
    rng = np.random.default_rng(0)
    shape = (50, 1, 8, 8) if image else (50, 3)
    np.save(tmp_path / "p.npy", rng.normal(size=shape).astype(np.float32))
    np.save(tmp_path / "q.npy", rng.normal(size=shape).astype(np.float32))
    code = main(
        [
            "w1",
            str(tmp_path / "p.npy"),
            str(tmp_path / "q.npy"),
            *flags,
            "--steps",
            "2",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err


def test_the_cli_shell_does_not_take_a_bug_for_a_user_mistake():
    """A user's InputError wrapped by the parser is one line; a bug raised while an
    InputError was being handled, with that context suppressed, stays a bug."""
    from wgan_lip.lightning_cli import _input_error_inside

    try:
        try:
            raise InputError("bad option")
        except InputError as e:
            raise ValueError("Does not validate against any of the Union subtypes") from e
    except ValueError as wrapped:
        assert str(_input_error_inside(wrapped)) == "bad option"
    try:
        try:
            raise InputError("bad option")
        except InputError:
            raise RuntimeError("a bug") from None
    except RuntimeError as bug:
        assert _input_error_inside(bug) is None

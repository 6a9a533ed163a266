"""Bad parameters of the public helpers are clear errors at the call, never a wrong answer
(a certificate from a negative bound, a W1 of opposite-sign scales) or a ZeroDivisionError."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wgan_lip import sliced_w1
from wgan_lip.data import GaussianScale, PointVsSphere, Translation
from wgan_lip.errors import InputError
from wgan_lip.gan import WGAN, GANArchitecture
from wgan_lip.gan.critics import build_gan_critic
from wgan_lip.robust import is_certified, pgd_l2
from wgan_lip.w1.loss import DualStats

LOGITS = torch.tensor([[0.0, 1.0], [2.0, 0.0]])  # the first is misclassified (label 0)
LABELS = torch.tensor([0, 0])


@pytest.mark.parametrize("bound", [-1.0, 0.0, math.nan])
def test_a_bound_that_is_not_positive_certifies_nothing_and_says_so(bound):
    with pytest.raises(ValueError, match="Lipschitz bound must be positive"):
        is_certified(LOGITS, LABELS, 0.5, bound)


def test_an_infinite_bound_certifies_nothing_and_a_negative_radius_is_refused():
    assert not is_certified(LOGITS, LABELS, 0.5, math.inf).any()
    with pytest.raises(ValueError, match="radius must be non-negative"):
        is_certified(LOGITS, LABELS, -0.1, 1.0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GaussianScale(dim=2, scale_p=-1.0, scale_q=1.0), "non-negative"),
        (lambda: PointVsSphere(dim=2, radius=-1.0), "radius must be non-negative"),
        (lambda: Translation(dim=2, base="laplace"), "unknown base 'laplace'"),
        (lambda: Translation(dim=0), "dim must be a positive integer"),
    ],
)
def test_known_w1_problems_refuse_bad_parameters_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("steps, restarts", [(0, 1), (5, 0)])
def test_pgd_without_steps_or_starts_is_refused(steps, restarts):
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="steps >= 1 and restarts >= 1"):
        pgd_l2(
            model,
            torch.rand(3, 2),
            torch.zeros(3, dtype=torch.long),
            0.1,
            steps=steps,
            restarts=restarts,
        )


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_sliced_w1_needs_a_positive_number_of_projections(n):
    p = np.zeros((5, 3))
    with pytest.raises(InputError, match="n_projections must be a positive integer"):
        sliced_w1(p, p + 1, n_projections=n)


def test_dual_stats_without_scores_is_a_clear_error():
    with pytest.raises(ValueError, match="no scores"):
        _ = DualStats().stderr


def test_wgan_refuses_a_zero_generator_rate_and_an_unknown_image_net():
    arch = GANArchitecture(generator_widths=(8,), critic={"widths": (8,)})
    with pytest.raises(InputError, match="generator_lr must be positive"):
        WGAN("hard", data_shape=(2,), architecture=arch, optimizer={"generator_lr": 0.0})
    with pytest.raises(InputError, match="unknown network kind 'cnn'"):
        build_gan_critic("gp", (1, 8, 8), {"kind": "cnn"})


@pytest.mark.parametrize("scores", [torch.tensor([1.0, math.nan]), torch.tensor([math.inf, 0.0])])
def test_permutation_test_refuses_non_finite_scores(scores):
    from wgan_lip.w1.two_sample import permutation_p_value

    with pytest.raises(ValueError, match="NaN or infinite"):
        permutation_p_value(scores, torch.zeros(3), permutations=9)
    with pytest.raises(ValueError, match="permutations must be a positive integer"):
        permutation_p_value(torch.ones(3), torch.zeros(3), permutations=0)


def test_clipping_and_normalization_refuse_what_they_cannot_do():
    from wgan_lip.critic import fit_shift_scale
    from wgan_lip.penalties import clip_weights

    with pytest.raises(ValueError, match="clipping bound must be positive"):
        clip_weights(nn.Linear(2, 2), -0.1)
    with pytest.raises(ValueError, match="at least one sample"):
        fit_shift_scale(torch.zeros(2), torch.ones(()), torch.zeros(0, 2))
    arch = GANArchitecture(generator_widths=(8,), critic={"widths": (8,)})
    with pytest.raises(InputError, match="clip_value must be positive"):
        WGAN("clip", data_shape=(2,), architecture=arch, optimizer={"clip_value": 0.0})


def test_a_one_row_or_malformed_uci_file_is_read_or_refused_clearly(tmp_path):
    from wgan_lip.data.vision import read_uci_digits

    (tmp_path / "uci-digits").mkdir()
    row = ",".join(["16"] * 64 + ["3"])
    (tmp_path / "uci-digits" / "optdigits.tra").write_text(row + "\n")
    one = read_uci_digits(tmp_path, "train")
    assert one.images.shape == (1, 1, 8, 8) and one.labels.tolist() == [3]
    (tmp_path / "uci-digits" / "optdigits.tes").write_text("1,2,x\n")
    with pytest.raises(InputError, match="uci-digits"):
        read_uci_digits(tmp_path, "test")


def test_a_nan_fold_makes_the_combined_p_value_nan_in_any_order():
    from wgan_lip.w1.two_sample import combine_fold_p_values

    assert math.isnan(combine_fold_p_values([0.01, math.nan]))
    assert math.isnan(combine_fold_p_values([math.nan, 0.01]))
    with pytest.raises(ValueError, match="at least one"):
        combine_fold_p_values([])


def test_read_mnist_refuses_mismatched_image_and_label_counts(tmp_path) -> None:
    from wgan_lip.data.vision import read_mnist

    def idx(*dims: int) -> bytes:
        head = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
        return head + bytes(math.prod(dims))

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(idx(3, 28, 28))
    (raw / "train-labels-idx1-ubyte").write_bytes(idx(4))
    with pytest.raises(InputError, match="do not match"):
        read_mnist(tmp_path)


def test_batch_and_chunk_sizes_below_one_fail_when_called() -> None:
    from wgan_lip.data.rows import TensorRows
    from wgan_lip.w1.data import SideChunks, shuffled_batches

    rows, gen = TensorRows(torch.zeros(4, 2)), torch.Generator()
    for size, index in ((0, torch.arange(4)), (2, torch.arange(0))):
        with pytest.raises(ValueError, match="shuffled_batches"):
            shuffled_batches(rows, index, size, gen)  # at the call, not at the first batch
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        SideChunks(torch.zeros(2, 1), torch.zeros(2, 1), chunk=0)


def test_maxmin_members_need_an_even_width() -> None:
    from wgan_lip.w1.family import parse_member

    assert parse_member("mlp:8x2:maxmin").widths == (8, 8)
    with pytest.raises(InputError, match="multiple of the group"):
        parse_member("mlp:7x2:maxmin")


def test_convnet_channels_must_fit_the_group() -> None:
    from wgan_lip.models import lipschitz_convnet

    with pytest.raises(ValueError, match="multiples of group_size 4"):
        lipschitz_convnet(1, 8, (6,), 3, group_size=4)
    with pytest.raises(ValueError, match="multiples of group_size 2"):
        lipschitz_convnet(1, 8, (4,), 3, head_widths=(5,))


# ----- sample files: every odd file is one line, never a silent misreading -----


def _load(path):
    from wgan_lip.data.sources import load_samples

    return load_samples(str(path))


def test_npz_with_extended_precision_or_times_is_one_line_or_exact(tmp_path):
    exact = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.longdouble)
    np.savez(tmp_path / "exact.npz", a=exact)
    assert _load(tmp_path / "exact.npz").data.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    third = exact + np.longdouble(1) / np.longdouble(3)
    np.savez(tmp_path / "f128.npz", a=third)
    np.savez(tmp_path / "td.npz", a=np.ones((5, 2), dtype="timedelta64[s]"))
    for name, match in (("td.npz", "timedelta64"), ("f128.npz", "cannot represent exactly")):
        if name == "f128.npz" and np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
            continue  # longdouble is float64 on this platform
        with pytest.raises(InputError, match=match) as e:
            _load(tmp_path / name)
        assert "\n" not in str(e.value)


def _image_folder(folder, n=4):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(folder / f"{i}.png")


def test_an_image_folder_with_a_stray_npy_is_refused_naming_both(tmp_path):
    """A folder of images that also held one .npy was read as that one array."""
    _image_folder(tmp_path / "imgs")
    assert _load(tmp_path / "imgs").event_shape == (1, 8, 8)
    np.save(tmp_path / "imgs" / "extra.npy", np.zeros((3, 2)))
    with pytest.raises(
        InputError,
        match=r"holds both images \('\d\.png'\) and .npy shards "
        r"\('extra\.npy'\); keep one kind",
    ) as e:
        _load(tmp_path / "imgs")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1,2x\n3,4\n5,6\n7,8\n", r"non-numeric value '2x' in .* line 1, column 2"),
        ("1_000,2\n3,4\n5,6\n", r"value '1_000' \(digit separators are not allowed: write 1000\)"),
        ("x,y\n1,2\n3,4_5\n", r"'4_5' .* line 3, column 2"),
    ],
)
def test_csv_typos_are_refused_not_dropped_as_a_header(tmp_path, text, match):
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(InputError, match=match) as e:
        _load(tmp_path / "p.csv")
    assert "\n" not in str(e.value)


def test_a_csv_header_is_a_first_line_without_any_number(tmp_path):
    (tmp_path / "p.csv").write_text(",x,y\n0, 1.5,2e1\n1,3,-4\n")
    assert _load(tmp_path / "p.csv").data.tolist() == [[0.0, 1.5, 20.0], [1.0, 3.0, -4.0]]


# ----- estimate_w1: every option checked by name before any data is read -----


W1_BAD_OPTIONS = [
    ({"seed": 2**70}, r"seed must be in \[0, 4294967295\], got 1180591620717411303424"),
    ({"seed": -1}, r"seed must be in \[0, 4294967295\], got -1"),
    ({"widths": (0,)}, "widths"),
    ({"widths": ()}, "widths"),
    ({"lr": math.nan}, "lr must be a finite number"),
    ({"lr": -1e-3}, "lr must be a finite number"),
    ({"max_time": "garbage"}, 'max_time must be a duration "DD:HH:MM:SS"'),
    ({"max_time": "00:00:00:00"}, "max_time must be a positive duration"),
    ({"patience": -1}, "patience must be positive, got -1"),
    ({"steps": 2.5}, "steps must be a positive integer, got 2.5"),
    ({"steps": True}, "steps must be a positive integer, got True"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer, got 2.5"),
    ({"folds": True}, "folds must be a positive integer, got True"),
    ({"family": "linear"}, "family must be a non-empty list of names"),
    ({"devices": 0}, "devices must be"),
    ({"accelerator": "gpux"}, "accelerator must be one of auto, cpu"),
    ({"progress": "yes"}, "progress must be True or False"),
]


@pytest.mark.parametrize(("options", "match"), W1_BAD_OPTIONS, ids=lambda o: str(o)[:30])
def test_estimate_w1_refuses_every_bad_option_in_one_line(options, match):
    from wgan_lip import estimate_w1

    # the options of older versions are sorted into their new places: critic, network, trainer
    critic, network, trainer = {"name": "groupsort"}, {}, {"accelerator": "cpu"}
    kwargs = {"steps": 5, "progress": False}
    for key, value in options.items():
        if key in ("family", "lr", "eval_every", "patience"):
            critic[key] = value
        elif key == "widths":
            network[key] = value
        elif key in ("accelerator", "devices", "max_time", "callbacks"):
            trainer[key] = value
        else:
            kwargs[key] = value
    kwargs.update(critic=critic, network=network or None, trainer=trainer)
    # a source that cannot be read: the options must be refused before any data is
    with pytest.raises(InputError, match=match) as e:
        estimate_w1("no-such-file.npy", "no-such-file.npy", **kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"eval_every": 0}, "eval_every must be positive, got 0"),
        ({"eval_every": 2.5}, "eval_every must be a positive integer, got 2.5"),
        ({"holdout": math.nan}, r"holdout must be a finite number in \[0, 1\)"),
        ({"holdout": True}, r"holdout must be a finite number in \[0, 1\)"),
    ],
)
def test_train_options_check_the_datamodule_options_too(options, match):
    from wgan_lip.w1.estimate import _train_options

    critic = {"name": "groupsort"}
    if "eval_every" in options:
        critic["eval_every"] = options.pop("eval_every")
    with pytest.raises(InputError, match=match):
        _train_options(critic, None, 5, {"accelerator": "cpu"}, False, 0, **options)


def test_good_options_pass_in_plain_python_types():
    from wgan_lip.w1.estimate import _train_options

    critic = {"family": ["linear"], "lr": 1e-3, "patience": 3, "eval_every": np.int64(10)}
    trainer = {"max_time": "00:00:01:00", "accelerator": "cpu", "devices": 1}
    opts = _train_options(
        critic, None, np.int32(7), trainer, True, np.uint32(5), folds=np.int64(2), holdout=0.0
    )
    assert (opts.steps, opts.seed, opts.members) == (7, 5, ("linear",))
    assert type(opts.steps) is int and type(opts.seed) is int

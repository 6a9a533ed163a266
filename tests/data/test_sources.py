import numpy as np
import pytest
import torch

from wgan_lip.data.sources import load_pair, load_samples
from wgan_lip.errors import InputError


def test_arrays_tensors_and_files_agree(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "one.npz", data=x)
    np.savez(tmp_path / "two.npz", x=x, y=x + 1)
    torch.save(torch.from_numpy(x), tmp_path / "a.pt")
    torch.save({"samples": torch.from_numpy(x)}, tmp_path / "d.pt")
    np.savetxt(tmp_path / "a.csv", x, delimiter=",", header="u,v,w", comments="")
    ref = torch.from_numpy(x).float()
    for src in (
        x,
        torch.from_numpy(x),
        tmp_path / "a.npy",
        str(tmp_path / "one.npz"),
        f"{tmp_path / 'two.npz'}:x",
        tmp_path / "a.pt",
        tmp_path / "d.pt",
        tmp_path / "a.csv",
    ):
        s = load_samples(src)
        assert s.data.dtype == torch.float32 and torch.allclose(s.data, ref, atol=1e-6), src
    assert torch.allclose(load_samples(f"{tmp_path / 'two.npz'}:y").data, ref + 1)


def test_shapes_vectors_and_images():
    assert load_samples(np.arange(5.0)).data.shape == (5, 1)
    img = load_samples(np.zeros((4, 6, 6)))
    assert img.is_image and img.data.shape == (4, 1, 6, 6) and img.dim == 36
    p, q = load_pair(np.zeros((4, 1, 3, 3)), np.ones((5, 9)))  # same size: both flattened
    assert p.data.shape == (4, 9) and q.data.shape == (5, 9)


def test_image_folder(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((5, 4), 60 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    s = load_samples(tmp_path)
    assert s.data.shape == (3, 1, 5, 4)
    assert s.data[2].max().item() == pytest.approx(120 / 255)
    Image.fromarray(np.zeros((3, 3), dtype=np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(InputError, match="differ in size"):
        load_samples(tmp_path)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: str(d / "missing.npy"), "no such file"),
        (lambda d: (d / "a.txt").write_text("1,2") and str(d / "a.txt"), "unknown format '.txt'"),
        (lambda d: "mnistt", r"unknown dataset 'mnistt'; known: mnist, fashion-mnist"),
        (lambda d: (d / "b.csv").write_text("1,2\n3,x\n") and str(d / "b.csv"), "line 2, column 2"),
        (lambda d: np.array([[1.0, np.nan], [np.inf, 0], [1, 1]]), "2 of 3 samples contain NaN"),
        (lambda d: np.zeros((1, 3)), "at least 2 samples"),
        (lambda d: np.zeros((2, 2, 2, 2, 2)), "expected"),
        (lambda d: np.array(["a", "b"]), "numeric"),
    ],
)
def test_bad_sources_are_one_line_input_errors(tmp_path, make, match):
    with pytest.raises(InputError, match=match) as exc:
        load_samples(make(tmp_path), data_root=tmp_path)
    assert "\n" not in str(exc.value)


def test_npz_with_several_arrays_needs_a_key(tmp_path):
    np.savez(tmp_path / "two.npz", x=np.zeros((3, 2)), y=np.zeros((3, 2)))
    with pytest.raises(InputError, match="holds 2 arrays"):
        load_samples(tmp_path / "two.npz")
    with pytest.raises(InputError, match="no array 'z'"):
        load_samples(f"{tmp_path / 'two.npz'}:z")


def test_dimension_mismatch_names_both_shapes():
    with pytest.raises(InputError, match=r"P has shape \(4, 3\), Q has shape \(5, 2\)"):
        load_pair(np.zeros((4, 3)), np.zeros((5, 2)))


def test_named_datasets_with_class_filters(data_root):
    three = load_samples("mnist:3", data_root=data_root)
    assert three.data.shape == (6131, 1, 28, 28)  # the MNIST training set has 6,131 threes
    assert 0.0 <= three.data.min() and three.data.max() <= 1.0
    test7 = load_samples("mnist:test:7", data_root=data_root)
    assert test7.n == 1028
    digits = load_samples("uci-digits:test", data_root=data_root)
    assert digits.data.shape == (1797, 1, 8, 8)
    with pytest.raises(InputError, match="classes 0-9, got 12"):
        load_samples("mnist:12", data_root=data_root)


def test_data_root_without_the_dataset_says_where_it_looked(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=f"looked for '{tmp_path}/FashionMNIST/raw'"):
        load_samples("fashion-mnist:7", data_root=tmp_path)
    monkeypatch.delenv("WGAN_LIP_DATA", raising=False)
    with pytest.raises(InputError, match="--data-root"):
        load_samples("mnist")

"""WGAN datamodules: toys, image files and folders, named datasets from a data root."""

import numpy as np
import pytest
import torch

from wgan_lip.errors import InputError
from wgan_lip.gan import ImageDataModule, ToyDataModule

from .helpers import tiny_images


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians", "swissroll"])
def test_toys_are_seeded_with_an_independent_heldout_set(name):
    a, b = ToyDataModule(name, n_train=400, n_val=100), ToyDataModule(name, n_train=400, n_val=100)
    a.setup()
    b.setup()
    assert a.data_shape == (2,) and a.train_set.shape == (400, 2) and a.val_set.shape == (100, 2)
    assert torch.equal(a.train_set, b.train_set)
    assert not torch.equal(a.train_set[:100], a.val_set)
    batch = next(iter(a.train_dataloader()))[0]
    assert batch.shape == (256, 2)


def test_unknown_toy_and_tiny_dataset_are_clear_errors():
    with pytest.raises(InputError, match="unknown toy 'moons'"):
        ToyDataModule("moons")
    dm = ToyDataModule(n_train=10, batch_size=64)
    dm.setup()
    with pytest.raises(InputError, match="only 10 training samples for batch_size 64"):
        dm.train_dataloader()


def test_image_file_is_split_into_train_and_heldout(tmp_path):
    dm = ImageDataModule(tiny_images(tmp_path / "x.npy", n=200), val_fraction=0.25, n_val=30)
    dm.setup()
    assert dm.data_shape == (1, 8, 8)
    assert len(dm.train_set) == 150 and len(dm.val_set) == 30
    rows = {tuple(r.flatten().tolist()) for r in dm.train_set}
    assert not any(tuple(r.flatten().tolist()) in rows for r in dm.val_set)


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(12):
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    dm = ImageDataModule(str(tmp_path), val_fraction=0.25, batch_size=4)
    dm.setup()
    assert dm.data_shape == (3, 16, 16) and len(dm.val_set) == 3
    assert 0 <= float(dm.train_set.min()) and float(dm.train_set.max()) <= 1


def test_bad_image_sources_are_clear_errors(tmp_path):
    np.save(tmp_path / "big.npy", np.full((10, 1, 8, 8), 255.0, dtype=np.float32))
    with pytest.raises(InputError, match=r"pixel values in \[255, 255\].*rescale"):
        ImageDataModule(str(tmp_path / "big.npy")).setup()
    np.save(tmp_path / "vec.npy", np.zeros((10, 3), dtype=np.float32))
    with pytest.raises(InputError, match="is not images"):
        ImageDataModule(str(tmp_path / "vec.npy")).setup()
    with pytest.raises(InputError, match="no such file"):
        ImageDataModule(str(tmp_path / "missing.npy")).setup()


def test_named_dataset_without_root_says_where_to_look(monkeypatch):
    monkeypatch.delenv("WGAN_LIP_DATA", raising=False)
    with pytest.raises(InputError, match="data root"):
        ImageDataModule("mnist").setup()


NAMED = [("mnist", (1, 28, 28)), ("fashion-mnist", (1, 28, 28)), ("cifar10-subset", (3, 32, 32))]


@pytest.mark.parametrize("name, shape", NAMED)
def test_named_datasets_train_on_train_and_evaluate_on_test(data_root, name, shape):
    dm = ImageDataModule(name, data_root=str(data_root), n_val=500)
    dm.setup()
    assert dm.data_shape == shape and len(dm.val_set) == 500
    assert len(dm.train_set) == (4000 if name == "cifar10-subset" else 60000)


def test_named_dataset_class_filter(data_root):
    dm = ImageDataModule("mnist:3", data_root=str(data_root))
    dm.setup()
    assert len(dm.train_set) == 6131  # the MNIST training threes

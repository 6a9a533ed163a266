"""Labelled image datasets for certified classifiers, in [0, 1] with no normalization.

Certificates are radii in the input space the user sees. A normalization such as
``(x - mean) / std`` would rescale that space silently; if one is wanted it must be a layer of
the model, so that ``lipschitz_bound`` accounts for it. Here pixels stay in [0, 1].
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..data.vision import ImageSet, load_named_dataset, parse_dataset_spec
from ..errors import InputError


def load_split(dataset: str, split: str, data_root: str | None) -> ImageSet:
    """``dataset`` (``mnist``, ``fashion-mnist``, ``cifar10-subset``, ``uci-digits``) split.

    Args:
        dataset: a whole named dataset (no ``:split`` or ``:class`` part; case-insensitive).
        split: ``"train"`` or ``"test"`` (another value is read as a class name and
            refused as an unknown class).
        data_root: the data root, or None for ``$WGAN_LIP_DATA``.

    Returns:
        The split as an :class:`~wgan_lip.data.vision.ImageSet` (every class).

    Raises:
        InputError: an unknown dataset or one with a ``:`` part, no data root, or the
            dataset missing or damaged under it.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.robust.data import load_split
        >>> with tempfile.TemporaryDirectory() as d:
        ...     (Path(d) / "uci-digits").mkdir()
        ...     row = ",".join(["4"] * 64 + ["2"])
        ...     _ = (Path(d) / "uci-digits" / "optdigits.tes").write_text(row + "\\n" + row)
        ...     test = load_split("uci-digits", "test", d)
        >>> test.images.shape, test.labels.tolist()
        (torch.Size([2, 1, 8, 8]), [2, 2])
        >>> load_split("mnist:3", "train", None)
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: dataset 'mnist:3': give a whole named dataset such as mnist
    """
    parsed = parse_dataset_spec(dataset)
    if parsed is None or parsed[2] is not None or ":" in dataset:
        raise InputError(f"dataset {dataset!r}: give a whole named dataset such as mnist")
    return load_named_dataset(f"{parsed[0]}:{split}", data_root)


class ClassificationDataModule(L.LightningDataModule):
    """Train on the train split; validate on ``n_val`` fixed test images; test on all of them.

    Args:
        dataset: ``mnist``, ``fashion-mnist``, ``cifar10-subset`` or ``uci-digits``.
        data_root: the data root (default ``$WGAN_LIP_DATA``), read-only.
        batch_size: training images per step (the last incomplete batch is dropped).
        n_val: test images used at each validation (certification is costly); None for all.
        seed: seed of the shuffling and of the fixed validation subset.

    Nothing is read until ``setup`` (or ``input_shape``, ``num_classes``).

    Raises:
        InputError: ``batch_size`` below 1; when loading, a dataset that is not a whole
            named dataset (no ``:class`` or ``:split``) or is missing from the data root.

    Example:
        >>> from wgan_lip.robust import ClassificationDataModule
        >>> dm = ClassificationDataModule("fashion-mnist", batch_size=64, n_val=500)
        >>> dm.dataset, dm.batch_size, dm.n_val
        ('fashion-mnist', 64, 500)
    """

    def __init__(
        self,
        dataset: str = "mnist",
        data_root: str | None = None,
        batch_size: int = 128,
        n_val: int | None = 2000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        self.dataset, self.data_root = dataset, data_root
        self.batch_size, self.n_val, self.seed = batch_size, n_val, seed
        self.train: ImageSet | None = None
        self.test: ImageSet | None = None

    def load(self) -> None:
        if self.train is None:
            self.train = load_split(self.dataset, "train", self.data_root)
            self.test = load_split(self.dataset, "test", self.data_root)

    @property
    def input_shape(self) -> tuple[int, ...]:
        self.load()
        return tuple(self.train.images.shape[1:])

    @property
    def num_classes(self) -> int:
        self.load()
        return len(self.train.classes)

    def setup(self, stage: str | None = None) -> None:
        self.load()

    def train_dataloader(self) -> DataLoader:
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            TensorDataset(self.train.images, self.train.labels),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            generator=gen,
        )

    def val_dataloader(self) -> DataLoader:
        x, y = self.test.images, self.test.labels
        if self.n_val is not None and self.n_val < len(y):
            keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed))
            x, y = x[keep[: self.n_val]], y[keep[: self.n_val]]
        return DataLoader(TensorDataset(x, y), batch_size=1000)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.test.images, self.test.labels), batch_size=1000)

"""Datamodules for WGAN training: the 2-D toys and image datasets from a local root.

Every datamodule serves shuffled real batches for training and a fixed held-out set of real
samples for evaluation (the metrics compare generated samples against it), and exposes
``data_shape`` so the WGAN can build its networks before training.
"""

from __future__ import annotations

import math
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..data import eight_gaussians, swiss_roll, twenty_five_gaussians
from ..data.sources import load_samples
from ..errors import InputError

TOYS = {
    "8gaussians": eight_gaussians,
    "25gaussians": twenty_five_gaussians,
    "swissroll": swiss_roll,
}


class _RealData(L.LightningDataModule):
    """Shared loaders over ``self.train_set`` / ``self.val_set`` (float32 tensors)."""

    def __init__(self, batch_size: int, seed: int) -> None:
        super().__init__()
        if batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.seed = seed
        self.train_set: torch.Tensor | None = None
        self.val_set: torch.Tensor | None = None

    def load(self) -> None:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    @property
    def data_shape(self) -> tuple[int, ...]:
        if self.train_set is None:
            self.load()
        return tuple(self.train_set.shape[1:])

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.load()

    def process_batch_size(self) -> int:
        """``batch_size`` is the global batch: under DDP each process loads its share."""
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.batch_size % world:
            raise InputError(
                f"batch_size {self.batch_size} is the global batch and must be divisible by "
                f"the {world} processes; use a multiple of {world}"
            )
        return self.batch_size // world

    def train_dataloader(self) -> DataLoader:
        if len(self.train_set) < self.batch_size:
            raise InputError(
                f"only {len(self.train_set)} training samples for batch_size {self.batch_size}"
            )
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            TensorDataset(self.train_set),
            batch_size=self.process_batch_size(),
            shuffle=True,
            drop_last=True,
            generator=gen,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.val_set), batch_size=1000, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()


class ToyDataModule(_RealData):
    """A 2-D toy: ``8gaussians``, ``25gaussians`` or ``swissroll``.

    ``n_train`` samples to train on (seed ``seed``) and ``n_val`` independent held-out
    samples (seed ``seed + 1``) for the metrics.

    Args:
        name: the toy: :func:`~wgan_lip.data.eight_gaussians`,
            :func:`~wgan_lip.data.twenty_five_gaussians` or :func:`~wgan_lip.data.swiss_roll`
            with their default settings.
        n_train: training samples, drawn once (at ``setup``, or on the first ``data_shape``).
        n_val: held-out samples for the metrics.
        batch_size: the global batch (split evenly among the processes under DDP).
        seed: seed of the training samples (``seed + 1`` for the held-out ones) and of the
            shuffling.

    Raises:
        InputError: an unknown ``name``, ``n_train``, ``n_val`` or ``batch_size`` below 1;
            from ``train_dataloader``, fewer training samples than ``batch_size`` or a
            batch that the processes cannot share evenly.

    Example:
        >>> from wgan_lip.gan import ToyDataModule
        >>> dm = ToyDataModule("8gaussians", n_train=1000, n_val=100, batch_size=64)
        >>> dm.data_shape, len(dm.val_set)
        ((2,), 100)
        >>> next(iter(dm.train_dataloader()))[0].shape
        torch.Size([64, 2])
    """

    def __init__(
        self,
        name: Literal["8gaussians", "25gaussians", "swissroll"] = "25gaussians",
        n_train: int = 50_000,
        n_val: int = 5_000,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        if name not in TOYS:
            raise InputError(f"unknown toy {name!r}; choose one of {', '.join(TOYS)}")
        if n_train < 1 or n_val < 1:
            raise InputError(f"n_train and n_val must be positive, got {n_train}, {n_val}")
        self.name, self.n_train, self.n_val = name, n_train, n_val

    def load(self) -> None:
        sample = TOYS[self.name]
        self.train_set = sample(self.n_train, seed=self.seed)
        self.val_set = sample(self.n_val, seed=self.seed + 1)


class ImageDataModule(_RealData):
    """Images from the data root or a folder, as float32 in [0, 1], shape ``(C, H, W)``.

    Args:
        dataset: ``mnist``, ``fashion-mnist``, ``cifar10-subset`` (optionally ``:class``,
            e.g. ``mnist:3``), or an image folder / ``.npy`` file of images.
        data_root: folder holding the named datasets in torchvision's layout (default
            ``$WGAN_LIP_DATA``); read-only, nothing is downloaded or extracted.
        val_fraction: for folders and files, the fraction held out for the metrics; named
            datasets train on their train split and evaluate on their test split.
        n_val: at most this many held-out images (a fixed-seed subsample).
        batch_size: the global batch (split evenly among the processes under DDP).
        seed: seed of the folder/file split, of the held-out subsample and of the shuffling.

    Nothing is read until ``setup`` (or ``data_shape``).

    Raises:
        InputError: ``batch_size`` below 1 or ``val_fraction`` outside ``(0, 1)``; when
            loading, a dataset that cannot be read, is not images ``(n, C, H, W)`` or has
            pixel values outside ``[0, 1]``.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from wgan_lip.gan import ImageDataModule
        >>> images = np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     np.save(os.path.join(folder, "images.npy"), images)
        ...     dm = ImageDataModule(os.path.join(folder, "images.npy"), val_fraction=0.25)
        ...     shape = dm.data_shape  # reads the file
        >>> shape, len(dm.train_set), len(dm.val_set)
        ((1, 8, 8), 15, 5)
    """

    def __init__(
        self,
        dataset: str = "mnist",
        data_root: str | None = None,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        n_val: int = 5_000,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        if not 0 < val_fraction < 1:
            raise InputError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.dataset, self.data_root = dataset, data_root
        self.val_fraction, self.n_val = val_fraction, n_val

    def _named_split(self, split: str) -> str | None:
        from ..data.vision import parse_dataset_spec

        parsed = parse_dataset_spec(self.dataset)
        if parsed is None:
            return None
        name, _, cls = parsed
        return f"{name}:{split}" + (f":{cls}" if cls is not None else "")

    def load(self) -> None:
        train_spec = self._named_split("train")
        if train_spec is not None:
            train = load_samples(train_spec, data_root=self.data_root, name="dataset").data
            val = load_samples(
                self._named_split("test"), data_root=self.data_root, name="dataset"
            ).data
        else:
            data = load_samples(self.dataset, name="dataset").data
            perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed))
            n_held = max(1, math.floor(self.val_fraction * len(data)))
            train, val = data[perm[n_held:]], data[perm[:n_held]]
        if train.dim() != 4:
            raise InputError(f"dataset {self.dataset!r} is not images: shape {tuple(train.shape)}")
        lo, hi = float(train.min()), float(train.max())
        if lo < 0 or hi > 1:
            raise InputError(
                f"dataset {self.dataset!r} has pixel values in [{lo:g}, {hi:g}]; the generators "
                "produce [0, 1]: rescale the images"
            )
        if len(val) > self.n_val:
            keep = torch.randperm(len(val), generator=torch.Generator().manual_seed(self.seed))
            val = val[keep[: self.n_val]]
        self.train_set, self.val_set = train.float(), val.float()

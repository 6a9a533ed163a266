"""Image datasets read from a local data root, read-only, in torchvision's on-disk layout.

Nothing is downloaded and nothing is written: the idx files of MNIST / Fashion-MNIST are read
from ``<root>/MNIST/raw`` (``.gz`` or extracted), the CIFAR-10 binary records from
``<root>/cifar10-subset`` (or ``<root>/cifar-10-batches-bin``), the UCI optical digits from
``<root>/uci-digits``. Pixels are returned as float32 in [0, 1] (digits: 0-16 scaled by 1/16),
shape ``(n, C, H, W)``, with integer labels.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

DATA_ENV = "WGAN_LIP_DATA"


@dataclass(frozen=True)
class ImageSet:
    """Images ``(n, C, H, W)`` float32 in [0, 1] with their labels ``(n,)``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]


def resolve_data_root(data_root: str | os.PathLike | None) -> Path:
    """``data_root`` if given, else ``$WGAN_LIP_DATA``; a clear error when neither is set."""
    root = data_root if data_root is not None else os.environ.get(DATA_ENV)
    if not root:
        raise InputError(
            f"named datasets need a data root: pass --data-root DIR (data_root=...) "
            f"or set {DATA_ENV}"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise InputError(f"data root {str(path)!r} is not a directory")
    return path


def _open_idx(folder: Path, stem: str) -> bytes:
    for name in (stem, stem + ".gz"):
        f = folder / name
        if f.is_file():
            data = f.read_bytes()
            return gzip.decompress(data) if name.endswith(".gz") else data
    raise InputError(f"missing {stem}(.gz) in {str(folder)!r}")


def _parse_idx(data: bytes, what: str) -> np.ndarray:
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise InputError(f"{what} is not an unsigned-byte idx file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise InputError(f"{what} is truncated: expected {int(np.prod(shape))} bytes")
    return body.reshape(shape)


MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)  # fmt: skip
CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def read_mnist(root: Path, split: str = "train", folder: str = "MNIST") -> ImageSet:
    """MNIST (``folder="MNIST"``) or Fashion-MNIST (``"FashionMNIST"``) from ``root``."""
    raw = Path(root) / folder / "raw"
    if not raw.is_dir():
        raise InputError(f"{folder} not found: looked for {str(raw)!r}")
    prefix = "train" if split == "train" else "t10k"
    images = _parse_idx(_open_idx(raw, f"{prefix}-images-idx3-ubyte"), f"{folder} images")
    labels = _parse_idx(_open_idx(raw, f"{prefix}-labels-idx1-ubyte"), f"{folder} labels")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    classes = MNIST_CLASSES if folder == "MNIST" else FASHION_CLASSES
    return ImageSet(x, torch.from_numpy(labels.astype(np.int64)), classes)


def read_cifar_binary(files: list[Path]) -> ImageSet:
    """CIFAR-10 binary records: 1 label byte, then 1024 R, 1024 G, 1024 B bytes."""
    chunks = []
    for f in files:
        data = np.frombuffer(f.read_bytes(), dtype=np.uint8)
        if data.size % 3073:
            raise InputError(f"{str(f)!r} is not a CIFAR-10 binary file (size % 3073 != 0)")
        chunks.append(data.reshape(-1, 3073))
    rec = np.concatenate(chunks)
    x = torch.from_numpy(rec[:, 1:].astype(np.float32) / 255.0).reshape(-1, 3, 32, 32)
    return ImageSet(x, torch.from_numpy(rec[:, 0].astype(np.int64)), CIFAR_CLASSES)


def read_cifar_subset(root: Path, split: str = "train") -> ImageSet:
    """The CIFAR-10 subset (``cifar10-subset/``) or a full ``cifar-10-batches-bin/``."""
    for folder, train_glob, test_glob in (
        ("cifar10-subset", "data_batch_*.bin", "test_batch*.bin"),
        ("cifar-10-batches-bin", "data_batch_*.bin", "test_batch.bin"),
    ):
        d = Path(root) / folder
        if d.is_dir():
            files = sorted(d.glob(train_glob if split == "train" else test_glob))
            if files:
                return read_cifar_binary(files)
    raise InputError(
        f"CIFAR-10 not found: looked for {str(Path(root) / 'cifar10-subset')!r} "
        f"and {str(Path(root) / 'cifar-10-batches-bin')!r}"
    )


def read_uci_digits(root: Path, split: str = "train") -> ImageSet:
    """UCI optical digits (8 x 8, values 0-16 scaled to [0, 1])."""
    f = Path(root) / "uci-digits" / ("optdigits.tra" if split == "train" else "optdigits.tes")
    if not f.is_file():
        raise InputError(f"uci-digits not found: looked for {str(f)!r}")
    rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(rows[:, :64] / 16.0).reshape(-1, 1, 8, 8)
    return ImageSet(x, torch.from_numpy(rows[:, 64].astype(np.int64)), MNIST_CLASSES)


READERS = {
    "mnist": lambda root, split: read_mnist(root, split, "MNIST"),
    "fashion-mnist": lambda root, split: read_mnist(root, split, "FashionMNIST"),
    "cifar10-subset": read_cifar_subset,
    "uci-digits": read_uci_digits,
}
KNOWN_DATASETS = tuple(READERS)


def parse_dataset_spec(spec: str) -> tuple[str, str, int | None] | None:
    """``name[:split][:class]`` -> ``(name, split, class)``, or None if not a dataset name.

    ``split`` is ``train`` (default) or ``test``; ``class`` an index or a class name.
    """
    parts = spec.split(":")
    name = parts[0].lower()
    if name not in READERS:
        return None
    split, cls = "train", None
    for part in parts[1:]:
        if part in ("train", "test"):
            split = part
        elif part.isdigit():
            cls = int(part)
        else:
            cls = part  # resolved against the class names later
    return name, split, cls


def load_named_dataset(spec: str, data_root: str | os.PathLike | None = None) -> ImageSet:
    """Load ``mnist``, ``mnist:3``, ``fashion-mnist:train:7``, ``cifar10-subset:test:cat``..."""
    parsed = parse_dataset_spec(spec)
    if parsed is None:
        raise InputError(
            f"unknown dataset {spec.split(':')[0]!r}; known: {', '.join(KNOWN_DATASETS)} "
            "(or give a file path)"
        )
    name, split, cls = parsed
    data = READERS[name](resolve_data_root(data_root), split)
    if cls is None:
        return data
    if isinstance(cls, str):
        if cls not in data.classes:
            raise InputError(f"{name} has no class {cls!r}; classes: {', '.join(data.classes)}")
        cls = data.classes.index(cls)
    if not 0 <= cls < len(data.classes):
        raise InputError(f"{name} has classes 0-{len(data.classes) - 1}, got {cls}")
    keep = data.labels == cls
    return ImageSet(data.images[keep], data.labels[keep], data.classes)

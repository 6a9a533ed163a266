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
    """Images ``(n, C, H, W)`` float32 in [0, 1] with their labels ``(n,)``.

    Attributes:
        images: float32 ``(n, C, H, W)``, values in [0, 1].
        labels: int64 ``(n,)``, class indices into ``classes``.
        classes: the class names of the dataset, in label order.

    Example:
        >>> import torch
        >>> from wgan_lip.data.vision import ImageSet
        >>> s = ImageSet(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 1, 0]), ("a", "b"))
        >>> s.images.shape, s.classes[int(s.labels[1])]
        (torch.Size([4, 1, 8, 8]), 'b')
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]


def resolve_data_root(data_root: str | os.PathLike | None) -> Path:
    """``data_root`` if given, else ``$WGAN_LIP_DATA``; a clear error when neither is set.

    Args:
        data_root: the folder holding the datasets (``~`` is expanded), or ``None`` to use
            the ``WGAN_LIP_DATA`` environment variable.

    Returns:
        The data root as a ``pathlib.Path``.

    Raises:
        InputError: neither is set (or the variable is empty), or the path is not a
            directory.

    Example:
        >>> import tempfile
        >>> from wgan_lip.data.vision import resolve_data_root
        >>> with tempfile.TemporaryDirectory() as d:
        ...     print(resolve_data_root(d).is_dir())
        True
        >>> resolve_data_root("/nonexistent/data")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: data root '/nonexistent/data' is not a directory
    """
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
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def read_mnist(root: Path, split: str = "train", folder: str = "MNIST") -> ImageSet:
    """MNIST (``folder="MNIST"``) or Fashion-MNIST (``"FashionMNIST"``) from ``root``.

    Reads the idx files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or their ``.gz``)
    from ``<root>/<folder>/raw``; nothing is downloaded.

    Args:
        root: the data root.
        split: ``"train"``; any other value reads the ``t10k`` (test) files.
        folder: ``"MNIST"`` (digit class names) or ``"FashionMNIST"`` (any other folder gets
            the Fashion-MNIST class names).

    Returns:
        An :class:`ImageSet`: images float32 ``(n, 1, H, W)`` in [0, 1] (pixels / 255) and
        int64 labels.

    Raises:
        InputError: the ``raw`` folder or a file is missing, a file is not an unsigned-byte
            idx file, it is truncated, or the image and label counts differ.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.data.vision import read_mnist
        >>> def idx(*dims):  # an unsigned-byte idx header, then zeros
        ...     head = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
        ...     n = 1
        ...     for d in dims:
        ...         n *= d
        ...     return head + bytes(n)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     raw = Path(d) / "MNIST" / "raw"
        ...     raw.mkdir(parents=True)
        ...     _ = (raw / "train-images-idx3-ubyte").write_bytes(idx(3, 28, 28))
        ...     _ = (raw / "train-labels-idx1-ubyte").write_bytes(idx(3))
        ...     s = read_mnist(Path(d))
        >>> s.images.shape, s.images.dtype, s.labels.tolist()
        (torch.Size([3, 1, 28, 28]), torch.float32, [0, 0, 0])
    """
    raw = Path(root) / folder / "raw"
    if not raw.is_dir():
        raise InputError(f"{folder} not found: looked for {str(raw)!r}")
    prefix = "train" if split == "train" else "t10k"
    images = _parse_idx(_open_idx(raw, f"{prefix}-images-idx3-ubyte"), f"{folder} images")
    labels = _parse_idx(_open_idx(raw, f"{prefix}-labels-idx1-ubyte"), f"{folder} labels")
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InputError(
            f"{folder} {split} files in {str(raw)!r} do not match: images of shape "
            f"{tuple(images.shape)} and labels of shape {tuple(labels.shape)}; restore the "
            "original idx files"
        )
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    classes = MNIST_CLASSES if folder == "MNIST" else FASHION_CLASSES
    return ImageSet(x, torch.from_numpy(labels.astype(np.int64)), classes)


def read_cifar_binary(files: list[Path]) -> ImageSet:
    """CIFAR-10 binary records: 1 label byte, then 1024 R, 1024 G, 1024 B bytes.

    Args:
        files: the binary batch files, read in order; at least one (an empty list fails in
            ``np.concatenate`` with a ``ValueError``).

    Returns:
        An :class:`ImageSet`: images float32 ``(n, 3, 32, 32)`` in [0, 1] and int64 labels,
        with the CIFAR-10 class names.

    Raises:
        InputError: a file whose size is not a multiple of 3073 bytes.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.data.vision import read_cifar_binary
        >>> with tempfile.TemporaryDirectory() as d:
        ...     f = Path(d) / "data_batch_1.bin"
        ...     _ = f.write_bytes(bytes([3]) + bytes([255]) * 3072 + bytes(3073))
        ...     s = read_cifar_binary([f])
        >>> s.images.shape, s.labels.tolist(), s.classes[3], float(s.images[0].min())
        (torch.Size([2, 3, 32, 32]), [3, 0], 'cat', 1.0)
    """
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
    """The CIFAR-10 subset (``cifar10-subset/``) or a full ``cifar-10-batches-bin/``.

    The first folder that exists and holds files of the split wins: ``data_batch_*.bin``
    for training, ``test_batch*.bin`` (the subset) or ``test_batch.bin`` (the full set) for
    testing.

    Args:
        root: the data root.
        split: ``"train"``; any other value reads the test files.

    Returns:
        An :class:`ImageSet` as :func:`read_cifar_binary` returns it.

    Raises:
        InputError: neither folder holds files of the split, or a file is not a CIFAR-10
            binary file.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.data.vision import read_cifar_subset
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sub = Path(d) / "cifar10-subset"
        ...     sub.mkdir()
        ...     _ = (sub / "test_batch_0.bin").write_bytes(bytes(3 * 3073))
        ...     print(read_cifar_subset(Path(d), "test").images.shape)
        ...     try:
        ...         read_cifar_subset(Path(d), "train")
        ...     except ValueError as e:
        ...         print(str(e).split(":")[0])
        torch.Size([3, 3, 32, 32])
        CIFAR-10 not found
    """
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
    """UCI optical digits (8 x 8, values 0-16 scaled to [0, 1]).

    Reads ``<root>/uci-digits/optdigits.tra`` (train) or ``optdigits.tes`` (test): comma-
    separated rows of 64 pixel values then the label.

    Args:
        root: the data root.
        split: ``"train"``; any other value reads the test file.

    Returns:
        An :class:`ImageSet`: images float32 ``(n, 1, 8, 8)`` (values / 16) and int64
        labels, with the digit class names.

    Raises:
        InputError: the file is missing. (A malformed file raises numpy's ``ValueError``,
            and a file of a single row an ``IndexError``.)

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.data.vision import read_uci_digits
        >>> with tempfile.TemporaryDirectory() as d:
        ...     (Path(d) / "uci-digits").mkdir()
        ...     row = ",".join(["16"] * 64 + ["7"])
        ...     _ = (Path(d) / "uci-digits" / "optdigits.tra").write_text(row + "\\n" + row)
        ...     s = read_uci_digits(Path(d))
        >>> s.images.shape, float(s.images.max()), s.labels.tolist()
        (torch.Size([2, 1, 8, 8]), 1.0, [7, 7])
    """
    f = Path(root) / "uci-digits" / ("optdigits.tra" if split == "train" else "optdigits.tes")
    if not f.is_file():
        raise InputError(f"uci-digits not found: looked for {str(f)!r}")
    try:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError as e:
        raise InputError(f"uci-digits: {str(f)!r} is not comma-separated numbers ({e})") from None
    if rows.shape[1] != 65:
        raise InputError(f"uci-digits: {str(f)!r} needs 65 columns per row, got {rows.shape[1]}")
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

    ``split`` is ``train`` (default) or ``test``; ``class`` an index or a class name. The
    parts after the name may come in any order; a class name is returned as a string (the
    annotation says ``int``), checked only by :func:`load_named_dataset`.

    Args:
        spec: the dataset spec; the name is case-insensitive (``"MNIST:3"``).

    Returns:
        ``(name, split, class)`` with ``name`` lowercased and ``class`` an ``int``, a ``str``
        or ``None`` (every class), or ``None`` when the name is not a known dataset.

    Example:
        >>> from wgan_lip.data.vision import parse_dataset_spec
        >>> parse_dataset_spec("fashion-mnist:test:7")
        ('fashion-mnist', 'test', 7)
        >>> parse_dataset_spec("cifar10-subset:cat")
        ('cifar10-subset', 'train', 'cat')
        >>> parse_dataset_spec("points.npy") is None
        True
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
    """Load ``mnist``, ``mnist:3``, ``fashion-mnist:train:7``, ``cifar10-subset:test:cat``...

    Args:
        spec: ``name[:split][:class]`` (see :func:`parse_dataset_spec`); names are
            ``mnist``, ``fashion-mnist``, ``cifar10-subset`` and ``uci-digits``.
        data_root: the data root, or ``None`` for ``$WGAN_LIP_DATA`` (see
            :func:`resolve_data_root`).

    Returns:
        The :class:`ImageSet`, restricted to the images of ``class`` when one is given (it
        may then be empty).

    Raises:
        InputError: an unknown dataset name, no data root, the dataset missing or damaged
            under it, or an unknown class name or index.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.data.vision import load_named_dataset
        >>> with tempfile.TemporaryDirectory() as d:
        ...     (Path(d) / "uci-digits").mkdir()
        ...     rows = [",".join(["8"] * 64 + [str(c)]) for c in (3, 5, 3)]
        ...     _ = (Path(d) / "uci-digits" / "optdigits.tra").write_text("\\n".join(rows))
        ...     s = load_named_dataset("uci-digits:3", d)
        >>> s.images.shape, s.labels.tolist()
        (torch.Size([2, 1, 8, 8]), [3, 3])
        >>> load_named_dataset("imagenet", "/tmp")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: unknown dataset 'imagenet'; known: mnist, fashion-mnist,
        cifar10-subset, uci-digits (or give a file path)
    """
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

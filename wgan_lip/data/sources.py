"""Turn what a user passes as a sample source into a float32 tensor, or a one-line error.

A source is a callable ``n -> samples`` or a torch ``Dataset`` / ``IterableDataset``
(:mod:`wgan_lip.data.samplers`: fresh draws at every read), a numpy array, a torch tensor,
a file (``.npy``, ``.npz`` with one array or ``file.npz:key``, ``.pt``, ``.csv``), a folder
of images, a folder of ``.npy`` shards, or a named dataset from the data root (``mnist``,
``mnist:3``, ``fashion-mnist:train:7``, ``cifar10-subset``, ``uci-digits``; see
:mod:`wgan_lip.data.vision`). Vectors come back as ``(n, d)``; images as
``(n, C, H, W)`` (a 3-D array is ``(n, H, W)`` grayscale images).

``.npy`` files and shard folders are always memory-mapped and read on demand
(:class:`~wgan_lip.data.rows.NpyRows`), so they may be larger than memory.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .rows import MANIFEST, NpyRows, Rows, TensorRows
from .vision import load_named_dataset, parse_dataset_spec

FILE_FORMATS = (".npy", ".npz", ".pt", ".csv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Samples:
    """Samples as float32 ``(n, d)`` vectors or ``(n, C, H, W)`` images, read through
    :class:`~wgan_lip.data.rows.Rows` (a tensor in memory, or memory-mapped ``.npy``).

    ``Samples(tensor, description)`` wraps a tensor. ``data`` is every row in memory; code
    that must scale to files larger than memory reads rows with ``take`` instead.
    """

    rows: Rows
    description: str

    def __post_init__(self) -> None:
        if isinstance(self.rows, torch.Tensor):
            object.__setattr__(self, "rows", TensorRows(self.rows))

    @property
    def data(self) -> torch.Tensor:
        return self.rows.all()

    @property
    def streamed(self) -> bool:
        return self.rows.streamed

    @property
    def is_image(self) -> bool:
        return len(self.event_shape) == 3

    @property
    def n(self) -> int:
        return self.rows.n

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.rows.event_shape)

    @property
    def dim(self) -> int:
        return int(np.prod(self.event_shape))

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        return self.rows.take(idx)

    def flat(self) -> torch.Tensor:
        return self.data.reshape(self.n, -1)

    def flattened(self) -> Samples:
        """The same samples seen as ``(n, d)`` vectors (nothing is read)."""
        return Samples(self.rows.with_event_shape((self.dim,)), self.description)

    def subsample(self, k: int, seed: int = 0) -> torch.Tensor:
        """At most ``k`` rows, flattened, drawn without replacement (all rows if ``n <= k``)."""
        if self.n <= k:
            return self.rows.all().reshape(self.n, -1)
        idx = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))[:k]
        return self.take(idx.sort().values).reshape(k, -1)


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        arr = np.asarray(x)
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise InputError(f"{name}: expected numeric samples, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise InputError(f"{name}: complex samples are not supported")
    return t.to(torch.float32)


def _shape_samples(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dim() == 1:
        t = t[:, None]
    elif t.dim() == 3:
        t = t[:, None]
    elif t.dim() not in (2, 4):
        raise InputError(
            f"{name}: expected (n,), (n, d), (n, H, W) or (n, C, H, W) samples, "
            f"got shape {tuple(t.shape)}"
        )
    if t.shape[0] < 2:
        raise InputError(f"{name}: needs at least 2 samples, got {t.shape[0]}")
    if any(s == 0 for s in t.shape[1:]):
        raise InputError(f"{name}: samples have an empty dimension, shape {tuple(t.shape)}")
    bad = int((~torch.isfinite(t.reshape(t.shape[0], -1))).any(dim=1).sum())
    if bad:
        raise InputError(f"{name}: {bad} of {t.shape[0]} samples contain NaN or Inf")
    return t.contiguous()


def _read_csv(path: Path, name: str) -> np.ndarray:
    rows: list[list[float]] = []
    with path.open(newline="") as fh:
        for line_no, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                rows.append([float(c) for c in row])
            except ValueError:
                if line_no == 1 and not rows:
                    continue  # a header line
                col = next(i for i, c in enumerate(row) if not _is_float(c))
                raise InputError(
                    f"{name}: non-numeric value {row[col]!r} in {str(path)!r} "
                    f"line {line_no}, column {col + 1}"
                ) from None
    if not rows:
        raise InputError(f"{name}: {str(path)!r} has no numeric rows")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise InputError(f"{name}: {str(path)!r} has rows of different lengths {sorted(widths)}")
    return np.asarray(rows, dtype=np.float64)


def _is_float(c: str) -> bool:
    try:
        float(c)
    except ValueError:
        return False
    return True


def _read_npz(path: Path, key: str | None, name: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if key is None:
                if len(keys) != 1:
                    raise InputError(
                        f"{name}: {str(path)!r} holds {len(keys)} arrays ({', '.join(keys)}); "
                        f"name one as {path}:KEY"
                    )
                key = keys[0]
            if key not in keys:
                raise InputError(
                    f"{name}: {str(path)!r} has no array {key!r}; it has {', '.join(keys)}"
                )
            return z[key]
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{name}: cannot read {str(path)!r} as .npz ({e})") from None


def _read_pt(path: Path, name: str) -> torch.Tensor:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"{name}: cannot read {str(path)!r} as a torch file ({e})") from None
    if isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if len(tensors) != 1:
            raise InputError(
                f"{name}: {str(path)!r} must hold a tensor or a dict with one tensor, "
                f"found {len(tensors)} tensors"
            )
        obj = next(iter(tensors.values()))
    if not isinstance(obj, torch.Tensor):
        raise InputError(f"{name}: {str(path)!r} does not hold a tensor ({type(obj).__name__})")
    return obj


def _read_image_folder(path: Path, name: str) -> torch.Tensor:
    from PIL import Image

    files = sorted(f for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(
            f"{name}: folder {str(path)!r} has no images ({', '.join(IMAGE_SUFFIXES)})"
        )
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                arrays.append(np.asarray(im.convert(mode), dtype=np.float32) / 255.0)
        except OSError as e:
            raise InputError(f"{name}: cannot read image {str(f)!r} ({e})") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(
            f"{name}: images in {str(path)!r} differ in size or mode {sorted(shapes)}; "
            "resize them to one size"
        )
    x = torch.from_numpy(np.stack(arrays))
    return x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)


def _read_path(spec: str, name: str) -> torch.Tensor | NpyRows:
    key = None
    m = re.fullmatch(r"(.+\.npz):([^/\\:]+)", spec)
    if m and not Path(spec).exists():
        spec, key = m.group(1), m.group(2)
    path = Path(spec).expanduser()
    if path.is_dir():
        if any(path.glob("*.npy")) or (path / MANIFEST).is_file():
            return NpyRows(path, name)  # a dataset split into .npy shards
        return _read_image_folder(path, name)
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        if not path.exists():
            raise InputError(f"{name}: no such file {spec!r}")
        raise InputError(
            f"{name}: unknown format {suffix or '(no suffix)'!r} for {spec!r}; "
            f"use {', '.join(FILE_FORMATS)}, an image folder or a dataset name"
        )
    if not path.is_file():
        raise InputError(f"{name}: no such file {spec!r}")
    if suffix == ".npy":
        return NpyRows(path, name)
    if suffix == ".npz":
        return _as_tensor(_read_npz(path, key, name), name)
    if suffix == ".pt":
        return _as_tensor(_read_pt(path, name), name)
    return _as_tensor(_read_csv(path, name), name)


def _looks_like_path(spec: str) -> bool:
    """Dataset names have no dots or slashes; anything else is read as a path."""
    return "/" in spec or os.sep in spec or "." in spec or Path(spec).exists()


def load_samples(source, *, data_root: str | os.PathLike | None = None, name: str = "P") -> Samples:
    """Load one sample source (see the module docstring) as float32 :class:`Samples`.

    Raises :class:`~wgan_lip.errors.InputError` with a one-line message for anything a user
    can get wrong: missing file, unknown format or dataset, non-numeric CSV, NaN/Inf rows,
    fewer than 2 samples, a data root without the dataset.
    """
    if isinstance(source, Samples):
        return source
    from .samplers import sampler_rows

    sampled = sampler_rows(source, name)
    if sampled is not None:
        return Samples(sampled, sampled.description)
    if isinstance(source, (str, os.PathLike)):
        spec = os.fspath(source)
        if not _looks_like_path(spec) and parse_dataset_spec(spec) is not None:
            data = load_named_dataset(spec, data_root)
            return Samples(_shape_samples(data.images, name), spec)
        if not _looks_like_path(spec):
            load_named_dataset(spec, data_root)  # raises "unknown dataset ..."
        read = _read_path(spec, name)
        if isinstance(read, NpyRows):
            return Samples(read, read.description)
        return Samples(_shape_samples(read, name), spec)
    t = _shape_samples(_as_tensor(source, name), name)
    return Samples(t, f"{type(source).__name__} {tuple(t.shape)}")


def load_pair(p, q, *, data_root=None) -> tuple[Samples, Samples]:
    """Load P and Q and check that their sample shapes agree (naming both shapes if not)."""
    sp = load_samples(p, data_root=data_root, name="P")
    sq = load_samples(q, data_root=data_root, name="Q")
    if sp.event_shape != sq.event_shape:
        if sp.dim == sq.dim and (sp.is_image or sq.is_image):
            return sp.flattened(), sq.flattened()
        raise InputError(
            f"dimension mismatch: P has shape {(sp.n, *sp.event_shape)}, "
            f"Q has shape {(sq.n, *sq.event_shape)}"
        )
    return sp, sq

"""Turn what a user passes as a sample source into a float32 tensor, or a one-line error.

A source is a callable ``n -> samples`` or a torch ``Dataset`` / ``IterableDataset``
(:mod:`wgan_lip.data.samplers`: fresh draws at every read), a numpy array, a torch tensor,
a file (``.npy``, ``.npz`` with one array or ``file.npz:key``, ``.pt`` with a tensor, a dict
with one tensor or ``file.pt:key``, ``.csv``), a folder of images, a folder of ``.npy``
shards, or a named dataset from the data root (``mnist``,
``mnist:3``, ``fashion-mnist:train:7``, ``cifar10-subset``, ``uci-digits``; see
:mod:`wgan_lip.data.vision`). Vectors come back as ``(n, d)``; images as
``(n, C, H, W)`` (a 3-D array is ``(n, H, W)`` grayscale images).

``.npy`` files and shard folders are always memory-mapped and read on demand
(:class:`~wgan_lip.data.rows.NpyRows`), so they may be larger than memory.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .precision import (
    OFFSET_ROWS,
    centred,
    check_float32_range,
    common_offset,
    exact_samples,
)
from .rows import (
    MANIFEST,
    NPY_MAGIC,
    CentredRows,
    NpyRows,
    Rows,
    TensorRows,
    npy_trouble,
    short_reason,
)
from .vision import load_named_dataset, parse_dataset_spec

FILE_FORMATS = (".npy", ".npz", ".pt", ".csv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
KEYED = re.compile(r"(.+\.(?:npz|pt)):([^/\\:]+)", re.IGNORECASE)  # file.npz:key, file.pt:key
SHOWN_KEYS = 8  # keys named in an error message before "and N more"


@dataclass(frozen=True)
class Samples:
    """Samples as float32 ``(n, d)`` vectors or ``(n, C, H, W)`` images, read through Rows.

    The rows are a :class:`~wgan_lip.data.rows.Rows`: a tensor in memory, memory-mapped
    ``.npy``, a sampler or a dataset. ``Samples(tensor, description)`` wraps a tensor as it
    is (no checks: :func:`load_samples` validates and shapes user input). ``data`` is every
    row in memory; code that must scale to files larger than memory reads rows with
    ``take`` instead. ``n``, ``event_shape``, ``dim`` (entries per sample), ``is_image``
    (3-D samples) and ``streamed`` describe them.

    Attributes:
        rows: the rows (a tensor passed here is wrapped in a ``TensorRows``).
        description: how reports name the source (a file, a dataset name, a shape).

    Example:
        >>> import torch
        >>> from wgan_lip.data.sources import Samples
        >>> s = Samples(torch.zeros(10, 1, 2, 2), "ten images")
        >>> s.n, s.event_shape, s.dim, s.is_image, s.streamed
        (10, (1, 2, 2), 4, True, False)
        >>> s.flattened().event_shape, s.subsample(3, seed=0).shape
        ((4,), torch.Size([3, 4]))
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

    def exact_flat(self, k: int | None = None, seed: int = 0) -> torch.Tensor:
        """Float64 ``(n, d)`` rows computed without float32 rounding (centred by
        :func:`centre_pair`, if it was applied: distances are unchanged); with ``k``, at most
        ``k`` rows drawn without replacement."""
        idx = torch.arange(self.n)
        if k is not None and self.n > k:
            idx = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))[:k]
            idx = idx.sort().values
        return self.rows.take_exact(idx).reshape(len(idx), -1)

    def flattened(self) -> Samples:
        """The same samples seen as ``(n, d)`` vectors (nothing is read)."""
        return Samples(self.rows.with_event_shape((self.dim,)), self.description)

    def subsample(self, k: int, seed: int = 0) -> torch.Tensor:
        """At most ``k`` rows, flattened, drawn without replacement (all rows if ``n <= k``)."""
        if self.n <= k:
            return self.rows.all().reshape(self.n, -1)
        idx = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))[:k]
        return self.take(idx.sort().values).reshape(k, -1)


def _label(name: str, where: str | None) -> str:
    """How an error names a source: ``P`` or ``P: 'x.pt'``."""
    return f"{name}: {where!r}" if where else name


def _as_tensor(x, name: str, where: str | None = None) -> torch.Tensor:
    # the user's precision is kept until load_pair centres the data (see data.precision)
    return exact_samples(x, _label(name, where))


def _shape_samples(t: torch.Tensor, name: str, where: str | None = None) -> torch.Tensor:
    if t.dim() == 1:
        t = t[:, None]
    elif t.dim() == 3:
        t = t[:, None]
    elif t.dim() not in (2, 4):
        raise InputError(
            f"{_label(name, where)}: expected (n,), (n, d), (n, H, W) or (n, C, H, W) samples, "
            f"got shape {tuple(t.shape)}"
        )
    if t.shape[0] < 2:
        raise InputError(f"{_label(name, where)}: needs at least 2 samples, got {t.shape[0]}")
    if any(s == 0 for s in t.shape[1:]):
        raise InputError(
            f"{_label(name, where)}: samples have an empty dimension, shape {tuple(t.shape)}"
        )
    bad_rows = (~torch.isfinite(t.reshape(t.shape[0], -1))).any(dim=1)
    if bool(bad_rows.any()):
        first = int(bad_rows.nonzero()[0])
        of = f" of {where!r}" if where else ""
        raise InputError(
            f"{name}: {int(bad_rows.sum())} of {t.shape[0]} samples contain NaN or Inf, "
            f"the first is row {first}{of}; remove or fix those rows"
        )
    return t.contiguous()


def _keys(keys) -> str:
    """``'a', 'b', 'c'`` (at most :data:`SHOWN_KEYS`, then how many more)."""
    keys = [str(k) for k in keys]
    shown = ", ".join(repr(k) for k in keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def _read_csv(path: Path, name: str) -> np.ndarray:
    """The numeric rows of a CSV file; a first line without any number is a header.

    A first line with some numbers and some other cells (``1,2x``) is a typo, not a header:
    it is refused, naming the cell, rather than silently dropped. Numbers are what
    :func:`_is_float` accepts (Python's ``float`` syntax without ``_`` digit separators).
    Errors name the line as an editor numbers it (1-based, blank lines counted).
    """
    rows: list[list[float]] = []
    lines: list[int] = []  # the line each row came from
    where = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            end = 0  # the line the previous row ended on: a quoted field may span lines
            for row in reader:
                line_no, end = end + 1, reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                bad = [i for i, c in enumerate(row) if not _is_float(c)]
                if line_no == 1 and len(bad) == len(row) and not _misseparated(row):
                    continue  # a header line: not one number in it
                if bad:
                    hint = (
                        " (a first line with numbers is data, not a header)"
                        if (line_no == 1 and len(bad) < len(row))
                        else ""
                    )
                    raise InputError(
                        f"{name}: {_not_a_number(row[bad[0]])} in {where!r} "
                        f"line {line_no}, column {bad[0] + 1}{hint}"
                    )
                values = [float(c) for c in row]
                if rows and len(values) != len(rows[0]):
                    raise InputError(
                        f"{name}: {where!r} line {line_no} has {len(values)} fields, expected "
                        f"{len(rows[0])} like line {lines[0]}; every row needs as many values"
                    )
                rows.append(values)
                lines.append(line_no)
    except UnicodeDecodeError as e:
        raise InputError(
            f"{name}: {where!r} is not UTF-8 text (byte {e.object[e.start]:#04x} cannot be "
            "decoded); save it as a UTF-8 CSV file"
        ) from None
    except csv.Error as e:
        raise InputError(f"{name}: cannot read {where!r} as CSV ({short_reason(e)})") from None
    if not rows:
        raise InputError(f"{name}: {where!r} has no numeric rows")
    arr = np.asarray(rows, dtype=np.float64)
    bad_rows = ~np.isfinite(arr).all(axis=1)
    if bad_rows.any():
        first = int(np.argmax(bad_rows))
        raise InputError(
            f"{name}: {int(bad_rows.sum())} of {len(arr)} samples contain NaN or Inf, the "
            f"first is row {first} ({where!r} line {lines[first]}); remove or fix those rows"
        )
    return arr


def _misseparated(row: list[str]) -> bool:
    """Whether a cell of ``row`` is numbers joined by another separator (``1;2``)."""
    return any(_not_a_number(c).endswith("(fields must be separated by commas)") for c in row)


def _not_a_number(c: str) -> str:
    """Why the CSV cell ``c`` is not a number, for an error message."""
    if not c.strip():
        return "empty field"
    if "_" in c and _is_float(c.replace("_", "")):
        return f"value {c!r} (digit separators are not allowed: write {c.replace('_', '')})"
    if any(sep in c for sep in (";", "\t", " ")) and all(
        _is_float(v) for v in re.split(r"[;\s]+", c.strip())
    ):
        return f"value {c!r} (fields must be separated by commas)"
    return f"non-numeric value {c!r}"


def _is_float(c: str) -> bool:
    """Whether the CSV cell ``c`` is a number: Python's ``float`` syntax (surrounding
    spaces, ``1e3``, ``nan``, ``inf`` included) but not its ``1_000`` digit separators,
    which no other CSV reader takes for a number."""
    if "_" in c:
        return False
    try:
        float(c)
    except ValueError:
        return False
    return True


def _head(path: Path, k: int = 8) -> bytes:
    with path.open("rb") as fh:
        return fh.read(k)


def _read_npz(path: Path, key: str | None, name: str) -> np.ndarray:
    where = str(path)
    head = _head(path)
    if head.startswith(NPY_MAGIC):
        raise InputError(
            f"{name}: {where!r} is a .npy file, not an .npz archive; rename it to .npy"
        )
    if not head.startswith(b"PK"):
        raise InputError(
            f"{name}: cannot read {where!r} as .npz (it is not a zip archive); "
            "write it with np.savez"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if key is None:
                if not keys:
                    raise InputError(f"{name}: {where!r} holds no arrays")
                if len(keys) != 1:
                    raise InputError(
                        f"{name}: {where!r} holds {len(keys)} arrays {_keys(keys)}: "
                        f"pick one as {path}:{keys[0]}"
                    )
                key = keys[0]
            if key not in keys:
                raise InputError(f"{name}: {where!r} has no array {key!r}; it has {_keys(keys)}")
            try:
                return z[key]
            except Exception as e:
                member = key if key in z.zip.namelist() else f"{key}.npy"
                with z.zip.open(member) as fh:
                    why = npy_trouble(fh, z.zip.getinfo(member).file_size, e)
                raise InputError(
                    f"{name}: cannot read array {key!r} of {where!r} ({why})"
                ) from None
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{name}: cannot read {where!r} as .npz ({short_reason(e)})") from None


def _read_pt(path: Path, key: str | None, name: str) -> torch.Tensor:
    """A tensor saved with ``torch.save``: alone, as the one tensor of a dict, or the dict
    entry ``key``. Loaded with ``weights_only=True``: no pickled code is ever run."""
    where = str(path)
    head = _head(path, 2)
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        raise InputError(
            f"{name}: {where!r} is not a readable torch file (neither a zip archive nor a "
            "pickle); write it with torch.save"
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols, on stderr
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if m:
            hint = "; convert numpy arrays with torch.from_numpy" if "numpy" in m[1] else ""
            raise InputError(
                f"{name}: {where!r} holds a {m[1]} object, which is not unpickled (that could "
                f"run code): save tensors, or a dict of tensors, with torch.save{hint}"
            ) from None
        raise InputError(
            f"{name}: {where!r} is not a readable torch file ({short_reason(e)}); "
            "it may be truncated or damaged: write it again with torch.save"
        ) from None
    if isinstance(obj, dict):
        entries = {str(k): v for k, v in obj.items()}
        tensors = [k for k, v in entries.items() if isinstance(v, torch.Tensor)]
        if key is not None:
            if key not in entries:
                raise InputError(
                    f"{name}: {where!r} has no key {key!r}; its keys are {_keys(entries)}"
                )
            if key not in tensors:
                raise InputError(
                    f"{name}: {where!r} entry {key!r} is a {type(entries[key]).__name__}, "
                    f"not a tensor" + (f"; its tensors are {_keys(tensors)}" if tensors else "")
                )
            return entries[key]
        if len(tensors) == 1:
            return entries[tensors[0]]
        if not tensors:
            raise InputError(
                f"{name}: {where!r} holds a dict without tensors (keys {_keys(entries) or 'none'})"
                "; save the samples as a tensor"
            )
        raise InputError(
            f"{name}: {where!r} holds a dict with tensors {_keys(tensors)}: "
            f"pick one as {path}:{tensors[0]}"
        )
    if key is not None:
        raise InputError(
            f"{name}: {where!r} holds a {type(obj).__name__}, not a dict, so it has no key "
            f"{key!r}; pass {path} alone"
        )
    if not isinstance(obj, torch.Tensor):
        raise InputError(
            f"{name}: {where!r} holds a {type(obj).__name__}, not a tensor or a dict of tensors"
        )
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
        except Exception as e:  # not an image, truncated, a decompression bomb
            raise InputError(f"{name}: cannot read image {str(f)!r} ({short_reason(e)})") from None
    for f, a in zip(files, arrays, strict=True):
        if a.shape != arrays[0].shape:
            raise InputError(
                f"{name}: images in {str(path)!r} differ in size or mode: {files[0].name!r} "
                f"is {_image_kind(arrays[0])}, {str(f.relative_to(path))!r} is {_image_kind(a)}; "
                "resize them to one size"
            )
    x = torch.from_numpy(np.stack(arrays))
    return x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)


def _image_kind(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]} " + ("grayscale" if a.ndim == 2 else "RGB")


def _missing(spec: str, path: Path, name: str) -> InputError:
    """Why ``path`` is not there: a symlink loop, a broken symlink, or no such file."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            chain, p = [str(path)], path
            while p.is_symlink() and len(chain) < 6:
                p = p.parent / os.readlink(p)
                chain.append(str(p))
                if str(p) == chain[0]:
                    return InputError(
                        f"{name}: {spec!r} is a symlink loop ({' -> '.join(chain)}); "
                        "point it at a real file"
                    )
            return InputError(
                f"{name}: {spec!r} is a symlink loop (too many levels of symbolic links); "
                "point it at a real file"
            )
        if path.is_symlink():
            return InputError(
                f"{name}: {spec!r} is a broken symlink to {os.readlink(path)!r}, which does "
                "not exist"
            )
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):
            return InputError(f"{name}: cannot open {spec!r} ({e.strerror})")
    return InputError(f"{name}: no such file {spec!r}")


def _read_path(spec: str, name: str) -> torch.Tensor | NpyRows:
    if "\0" in spec:
        raise InputError(f"{name}: {spec!r} is not a valid path (it has a NUL character)")
    key = None
    m = KEYED.fullmatch(spec)
    if m and not os.path.lexists(spec):
        spec, key = m.group(1), m.group(2)
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # ~user of an unknown user
        path = Path(spec)
    try:
        return _read_file(spec, path, key, name)
    except OSError as e:  # unreadable (permissions, I/O error) after the checks
        raise InputError(
            f"{name}: cannot read {spec!r} ({e.strerror or short_reason(e)})"
        ) from None


def _refuse_mixed_folder(path: Path, shards: list[Path], name: str) -> None:
    """A folder is either ``.npy`` shards or images, never both: reading one kind would
    silently ignore the other (an image folder with a stray ``.npy`` was read as that one
    array)."""
    image = next((f for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES), None)
    if image is None:
        return
    shard = shards[0].name if shards else MANIFEST
    raise InputError(
        f"{name}: folder {str(path)!r} holds both images ({str(image.relative_to(path))!r}) "
        f"and .npy shards ({shard!r}); keep one kind per folder"
    )


def _read_file(spec: str, path: Path, key: str | None, name: str) -> torch.Tensor | NpyRows:
    if path.is_dir():
        shards = sorted(path.glob("*.npy"))
        if shards or (path / MANIFEST).is_file():
            _refuse_mixed_folder(path, shards, name)
            return NpyRows(path, name)  # a dataset split into .npy shards
        return _read_image_folder(path, name)
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        if not path.exists():
            raise _missing(spec, path, name)
        raise InputError(
            f"{name}: unknown format {suffix or '(no suffix)'!r} for {spec!r}; "
            f"use {', '.join(FILE_FORMATS)}, an image folder or a dataset name"
        )
    if not path.is_file():
        if path.exists():
            raise InputError(f"{name}: {spec!r} is not a regular file")
        raise _missing(spec, path, name)
    if path.stat().st_size == 0:
        raise InputError(f"{name}: {spec!r} is empty (0 bytes)")
    if suffix == ".npy":
        return NpyRows(path, name)
    if suffix == ".npz":
        return _as_tensor(_read_npz(path, key, name), name, str(path))
    if suffix == ".pt":
        return _as_tensor(_read_pt(path, key, name), name, str(path))
    return _as_tensor(_read_csv(path, name), name, str(path))


def _looks_like_path(spec: str) -> bool:
    """Dataset names have no dots or slashes; anything else is read as a path."""
    return "/" in spec or os.sep in spec or "." in spec or os.path.lexists(spec)


def load_samples(source, *, data_root: str | os.PathLike | None = None, name: str = "P") -> Samples:
    """Load one sample source (see the module docstring) as float32 :class:`Samples`.

    Raises :class:`~wgan_lip.errors.InputError` with a one-line message for anything a user
    can get wrong: missing file, unknown format or dataset, non-numeric CSV, NaN/Inf rows,
    fewer than 2 samples, a data root without the dataset.

    Samples ``(n,)`` become ``(n, 1)`` and ``(n, H, W)`` become ``(n, 1, H, W)``. A string
    without a dot or slash that is not an existing path is a dataset name; anything else is
    read as a path. In-memory sources are checked for NaN/Inf here; ``.npy`` sources as
    described in :class:`~wgan_lip.data.rows.NpyRows`; samplers at every draw.

    Args:
        source: a :class:`Samples` (returned as is), a sampler (callable or torch dataset,
            see :func:`~wgan_lip.data.samplers.sampler_rows`), a path or dataset name
            (``str`` or path-like), or a numpy array, tensor or nested list of numbers (any
            real or bool dtype).
        data_root: where named datasets are looked up (see
            :func:`~wgan_lip.data.vision.resolve_data_root`); unused for other sources.
        name: how errors name this source (``"P"``, ``"Q"``).

    Returns:
        The :class:`Samples`; their ``description`` is the path, the dataset name, the
        sampler's name, or the type and shape of an in-memory source.

    Raises:
        InputError: a source that cannot be read or is not valid samples (see above).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from wgan_lip.data.sources import load_samples
        >>> s = load_samples(np.arange(6, dtype=np.int64))
        >>> s.event_shape, s.data.dtype, s.description
        ((1,), torch.float32, 'ndarray (6, 1)')
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "p.csv")
        ...     with open(path, "w") as f:
        ...         _ = f.write("x,y\\n1,2\\n3,4\\n5,6\\n")
        ...     load_samples(path).data.tolist()
        [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
        >>> load_samples([[0.0, 1.0], [float("inf"), 2.0]], name="Q")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: Q: 1 of 2 samples contain NaN or Inf, the first is row 1;
        remove or fix those rows
    """
    if isinstance(source, Samples):
        return source
    from .samplers import sampler_rows

    sampled = sampler_rows(source, name)
    if sampled is not None:
        return Samples(CentredRows(sampled, None), sampled.description)
    if isinstance(source, (str, os.PathLike)):
        spec = os.fspath(source)
        if not _looks_like_path(spec) and parse_dataset_spec(spec) is not None:
            data = load_named_dataset(spec, data_root)
            return Samples(_shape_samples(data.images, name), spec)
        if not _looks_like_path(spec):
            load_named_dataset(spec, data_root)  # raises "unknown dataset ..."
        read = _read_path(spec, name)
        if isinstance(read, NpyRows):
            return Samples(CentredRows(read, None), read.description)
        return Samples(CentredRows(TensorRows(_shape_samples(read, name, spec)), None), spec)
    t = _shape_samples(_as_tensor(source, name), name)
    return Samples(CentredRows(TensorRows(t), None), f"{type(source).__name__} {tuple(t.shape)}")


def load_pair(p, q, *, data_root=None) -> tuple[Samples, Samples]:
    """Load P and Q and check that their sample shapes agree (naming both shapes if not).

    When the shapes differ but the number of entries per sample agrees and one side is
    images (``(C, H, W)`` samples), both are returned flattened to ``(n, d)`` vectors.

    Args:
        p: the source of P (anything :func:`load_samples` takes).
        q: the source of Q.
        data_root: where named datasets are looked up.

    Returns:
        ``(P, Q)`` as :class:`Samples` with the same ``event_shape``.

    Raises:
        InputError: either source is invalid, or the sample shapes differ (and cannot be
            reconciled by flattening).

    Example:
        >>> import torch
        >>> from wgan_lip.data.sources import load_pair
        >>> p, q = load_pair(torch.rand(5, 1, 2, 2), torch.rand(7, 4))
        >>> p.event_shape, q.event_shape
        ((4,), (4,))
        >>> load_pair(torch.rand(5, 3), torch.rand(7, 2))
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: dimension mismatch: P has shape (5, 3), Q has shape (7, 2)
    """
    sp = load_samples(p, data_root=data_root, name="P")
    sq = load_samples(q, data_root=data_root, name="Q")
    if sp.event_shape != sq.event_shape:
        if sp.dim == sq.dim and (sp.is_image or sq.is_image):
            return centre_pair(sp.flattened(), sq.flattened())
        raise InputError(
            f"dimension mismatch: P has shape {(sp.n, *sp.event_shape)}, "
            f"Q has shape {(sq.n, *sq.event_shape)}"
        )
    return centre_pair(sp, sq)


def centre_pair(sp: Samples, sq: Samples) -> tuple[Samples, Samples]:
    """Subtract one common offset from P and Q, in the data's own precision.

    Applies when either side holds values float32 cannot represent exactly (float64 or
    32/64-bit integer data). The offset is the pooled mean of the first rows of both sides
    (integral for integer data), so float32 is then used where it is accurate, around
    zero; W1 does not change (see :mod:`wgan_lip.data.precision`). Data that float32 holds
    exactly, named datasets and :class:`Samples` built by hand are left as they are.

    Args:
        sp: the samples of P (as :func:`load_samples` returns them).
        sq: the samples of Q, with the same event shape.

    Returns:
        ``(P, Q)`` whose rows are :class:`~wgan_lip.data.rows.CentredRows` with the common
        offset.

    Raises:
        InputError: centred values that float32 cannot hold (beyond its range, or a
            spread it flushes to zero).

    Example:
        >>> import numpy as np
        >>> from wgan_lip.data.sources import load_samples, centre_pair
        >>> p = load_samples(np.array([1e8, 1e8 + 0.2]), name="P")
        >>> q = load_samples(np.array([1e8 + 0.4, 1e8 + 0.6]), name="Q")
        >>> cp, cq = centre_pair(p, q)
        >>> [round(v, 6) for v in cp.rows.take_exact(np.arange(2)).reshape(-1).tolist()]
        [-0.3, -0.1]
    """
    if not (isinstance(sp.rows, CentredRows) and isinstance(sq.rows, CentredRows)):
        return sp, sq
    # one row tells the source dtype: float32 holds such values exactly, nothing to protect
    # (a sampler's row is a draw it did not need, a file's a read: keep the probe small)
    if all(s.rows.inner.take_source(torch.arange(1)).dtype == torch.float32 for s in (sp, sq)):
        return sp, sq
    parts = []
    for s in (sp, sq):
        k = min(s.n, OFFSET_ROWS // 10 if s.rows.fresh else OFFSET_ROWS)
        parts.append(s.rows.inner.take_source(torch.arange(k)))
    offset = common_offset(parts)
    for s, part in zip((sp, sq), parts, strict=True):
        check_float32_range(centred(part, offset), "P" if s is sp else "Q")
    return (
        Samples(CentredRows(sp.rows.inner, offset), sp.description),
        Samples(CentredRows(sq.rows.inner, offset), sq.description),
    )

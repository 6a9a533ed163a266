"""Row sources: samples addressed by row index, held in memory or memory-mapped from disk.

Everything that trains on samples reads them through :class:`Rows`, by index
(``take``), so a dataset far larger than memory can stand where an array would:

* :class:`TensorRows` wraps a float32 tensor that is already in memory.
* :class:`NpyRows` memory-maps one ``.npy`` file or a directory of ``.npy`` shards (one
  dataset split by rows). Nothing is read up front but the headers: a missing shard, an
  unreadable or truncated one, or one whose samples have another shape is refused before
  any training starts. Rows are read on demand and converted to float32, in pieces; the
  pages a piece mapped are handed back right after it is read (``MADV_DONTNEED``), so the
  resident memory stays bounded whatever the file size. The data stays in the kernel's
  page cache, which it can reclaim, not in the process.
"""

from __future__ import annotations

import itertools
import json
import math
import mmap
import re
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, short_reason

MANIFEST = "manifest.json"
NPY_MAGIC = b"\x93NUMPY"
CHECK_UP_FRONT_BYTES = 256 * 2**20  # smaller files are scanned for NaN/Inf when opened
FOLIO_BYTES = 2 * 2**20  # a page fault may map a whole page-cache folio (up to a huge page)
PIECE_BYTES = 64 * 2**20  # mapped bytes read before they are dropped again


class Rows(ABC):
    """``n`` samples of shape ``event_shape``, read by index as float32 tensors.

    The abstract interface; subclasses set ``n`` and ``event_shape`` and implement
    :meth:`take` and :meth:`with_event_shape`.

    Attributes:
        n: the number of samples (rows).
        event_shape: the shape of one sample.

    Example:
        >>> import torch
        >>> from wgan_lip.data.rows import Rows, TensorRows
        >>> rows: Rows = TensorRows(torch.arange(12.0).reshape(6, 2))
        >>> rows.n, rows.event_shape, rows.nbytes, rows.streamed
        (6, (2,), 48, False)
        >>> rows.take(torch.tensor([5, 0, 5]))
        tensor([[10., 11.],
                [ 0.,  1.],
                [10., 11.]])
        >>> rows.read(4, 100).shape  # ``stop`` is clipped to ``n``
        torch.Size([2, 2])
    """

    n: int
    event_shape: tuple[int, ...]

    @abstractmethod
    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (any order, repeats allowed) as a float32 ``(len(idx), *event)``."""

    def take_source(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` in their source dtype: float32, float64 or int64, whichever holds the
        user's values exactly (:mod:`wgan_lip.data.precision`); float32 by default."""
        return self.take(idx)

    def take_exact(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` as float64, computed without the float32 rounding of :meth:`take`
        (what certified numbers are computed from)."""
        return self.take_source(idx).to(torch.float64)

    @property
    def streamed(self) -> bool:
        """True when the rows live on disk and are read on demand."""
        return False

    @property
    def nbytes(self) -> int:
        """Size of all the rows as float32."""
        return 4 * self.n * math.prod(self.event_shape)

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` (a contiguous, sequential read)."""
        return self.take(torch.arange(start, min(stop, self.n)))

    def all(self) -> torch.Tensor:
        """Every row in memory (for sources that fit; streamed ones are read in chunks)."""
        return self.read(0, self.n)

    @abstractmethod
    def with_event_shape(self, shape: tuple[int, ...]) -> Rows:
        """The same rows seen with another sample shape of the same size."""


class TensorRows(Rows):
    """Rows of an in-memory tensor ``(n, *event_shape)``.

    The tensor is kept as given (no copy, no dtype conversion): pass float32 to honour the
    :class:`Rows` contract. ``take``, ``read`` and ``all`` return views or indexed copies of
    it on its device.

    Args:
        data: the samples, ``(n, *event_shape)``, normally float32.

    Example:
        >>> import torch
        >>> from wgan_lip.data.rows import TensorRows
        >>> rows = TensorRows(torch.zeros(4, 1, 2, 2))
        >>> rows.n, rows.event_shape
        (4, (1, 2, 2))
        >>> rows.with_event_shape((4,)).take(torch.tensor([0, 3])).shape
        torch.Size([2, 4])
    """

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data
        self.n = int(data.shape[0])
        self.event_shape = tuple(int(s) for s in data.shape[1:])

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        return self.data[idx]

    def read(self, start: int, stop: int) -> torch.Tensor:
        return self.data[start:stop]

    def all(self) -> torch.Tensor:
        return self.data

    def with_event_shape(self, shape: tuple[int, ...]) -> TensorRows:
        return TensorRows(self.data.reshape(self.n, *shape))


class CentredRows(Rows):
    """Rows of ``inner`` minus a common ``offset``, subtracted in the source's precision.

    :meth:`take` returns float32 of the centred values (for training), :meth:`take_exact`
    float64 (for certified numbers); see :mod:`wgan_lip.data.precision`. ``offset`` None
    only casts ``inner``'s source dtype to float32. P and Q get the same offset, so every
    distance between them, and W1, is unchanged.

    Args:
        inner: the rows in their source dtype.
        offset: a float64 tensor of the event shape (integral for integer sources), or None.

    Example:
        >>> import torch
        >>> from wgan_lip.data.rows import CentredRows, TensorRows
        >>> x = torch.tensor([[1e8], [1e8 + 0.25]], dtype=torch.float64)
        >>> rows = CentredRows(TensorRows(x), torch.tensor([1e8], dtype=torch.float64))
        >>> rows.take(torch.arange(2)).tolist(), rows.take(torch.arange(2)).dtype
        ([[0.0], [0.25]], torch.float32)
        >>> rows.take_exact(torch.tensor([1])).item()
        0.25
    """

    def __init__(self, inner: Rows, offset: torch.Tensor | None) -> None:
        self.inner = inner
        self.offset = (
            None if offset is None else offset.to(torch.float64).reshape(inner.event_shape)
        )
        self._offset32 = None if offset is None else self.offset.to(torch.float32)
        self.n, self.event_shape = inner.n, tuple(inner.event_shape)
        self.description = getattr(inner, "description", "")

    def take_source(self, idx: torch.Tensor) -> torch.Tensor:
        return self.inner.take_source(idx)

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        from .precision import centred

        x = self.inner.take_source(idx)
        if self.offset is None:
            return x.to(torch.float32)
        if x.dtype == torch.float32:  # exact source values: one rounding either way
            return x - self._offset32
        return centred(x, self.offset).to(torch.float32)

    def take_exact(self, idx: torch.Tensor) -> torch.Tensor:
        from .precision import centred

        return centred(self.inner.take_source(idx), self.offset)

    @property
    def streamed(self) -> bool:
        return self.inner.streamed

    @property
    def fresh(self) -> bool:
        """True when every read draws new samples (a sampler)."""
        return bool(getattr(self.inner, "fresh", False))

    def with_event_shape(self, shape: tuple[int, ...]) -> CentredRows:
        off = None if self.offset is None else self.offset.reshape(shape)
        return CentredRows(self.inner.with_event_shape(shape), off)


def read_npy_header(fh) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of a ``.npy`` stream, leaving ``fh`` at the data.

    Args:
        fh: a binary file object positioned at the start of the ``.npy`` data (format
            version 1.0, 2.0 or 3.0).

    Returns:
        ``(shape, dtype)``: the array's shape as a tuple of ints and its ``numpy.dtype``.

    Raises:
        ValueError: from numpy, when the stream does not start with a valid ``.npy`` magic
            string or header.

    Example:
        >>> import io
        >>> import numpy as np
        >>> from wgan_lip.data.rows import read_npy_header
        >>> buf = io.BytesIO()
        >>> np.save(buf, np.zeros((5, 3), dtype=np.float32))
        >>> _ = buf.seek(0)
        >>> read_npy_header(buf)
        ((5, 3), dtype('float32'))
        >>> buf.tell()  # the data starts here
        128
    """
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = fmt.read_array_header_2_0(fh)
    else:
        shape, _, dtype = fmt._read_array_header(fh, version)
    return tuple(shape), dtype


def npy_trouble(fh, size: int, e: BaseException) -> str:
    """Why a ``.npy`` stream of ``size`` bytes could not be read, in a few words.

    It looks for the usual causes (an empty file, no ``.npy`` magic, an object dtype, a file
    shorter than its header announces) and otherwise falls back to :func:`short_reason` of
    ``e``. It never raises.

    Args:
        fh: the stream, a binary file object positioned at its start (it is read and moved).
        size: the stream's length in bytes.
        e: the exception the reader raised, used when no cause is recognised.

    Returns:
        A short reason, to put inside a one-line error.

    Example:
        >>> import io
        >>> import numpy as np
        >>> from wgan_lip.data.rows import npy_trouble
        >>> buf = io.BytesIO()
        >>> np.save(buf, np.zeros(100))
        >>> cut = buf.getvalue()[:200]
        >>> npy_trouble(io.BytesIO(cut), len(cut), ValueError("cannot reshape"))
        'it is truncated: its header announces (100,) float64, 928 bytes, but it has 200'
        >>> npy_trouble(io.BytesIO(b"hello"), 5, ValueError("bad magic"))
        'it does not start with the .npy header; write it with np.save'
    """
    try:
        if size == 0:
            return "it is empty, 0 bytes"
        if fh.read(len(NPY_MAGIC)) != NPY_MAGIC:
            return "it does not start with the .npy header; write it with np.save"
        fh.seek(0)
        shape, dtype = read_npy_header(fh)
        if dtype.hasobject:
            return f"it holds Python objects (dtype {dtype}), not numbers; save a numeric array"
        need = fh.tell() + math.prod(shape) * dtype.itemsize
        if size < need:
            return (
                f"it is truncated: its header announces {shape} {dtype}, {need} bytes, "
                f"but it has {size}"
            )
    except Exception:
        pass  # a damaged header: the reader's own reason says more
    return short_reason(e)


def _numbered(files: list[Path]) -> list[tuple[int, Path]] | None:
    """``(number, file)`` sorted by the trailing integer of each stem, or None if one lacks it."""
    out = []
    for f in files:
        m = re.search(r"(\d+)$", f.stem)
        if m is None:
            return None
        out.append((int(m.group(1)), f))
    return sorted(out)


def shard_files(path: Path, name: str) -> list[Path]:
    """The ``.npy`` shards of a directory, in order, after checking that none is missing.

    With a ``manifest.json`` (``{"shards": [file, ...], "rows": [n, ...]}``, ``rows``
    optional) the shards are exactly those listed. Otherwise they are the directory's
    ``.npy`` files; if their names end in numbers (``part-00000.npy``), the numbers must
    run without a gap, and the shards are ordered by number (otherwise by name).

    Args:
        path: the directory of shards.
        name: how errors name this source (``"P"``, ``"Q"``).

    Returns:
        The shard files, in row order (possibly empty when the directory holds no ``.npy``).

    Raises:
        InputError: an unreadable or malformed manifest, a shard it lists that is missing,
            or a gap in the numbered shards.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from wgan_lip.data.rows import shard_files
        >>> with tempfile.TemporaryDirectory() as d:
        ...     for i in (0, 1, 10):
        ...         np.save(Path(d) / f"part-{i}.npy", np.zeros((2, 3)))
        ...     try:
        ...         shard_files(Path(d), "P")
        ...     except ValueError as e:
        ...         print(str(e).split(" is missing")[0])
        P: shard 2
        >>> with tempfile.TemporaryDirectory() as d:
        ...     for i in range(11):
        ...         np.save(Path(d) / f"part-{i}.npy", np.zeros((2, 3)))
        ...     [f.name for f in shard_files(Path(d), "P")][-3:]  # by number, not by name
        ['part-8.npy', 'part-9.npy', 'part-10.npy']
    """
    manifest = path / MANIFEST
    if manifest.is_file():
        files = [path / s for s in read_manifest(manifest, name)["shards"]]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise InputError(
                f"{name}: shard {missing[0]!r} listed in {MANIFEST} is missing"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        return files
    files = sorted(path.glob("*.npy"))
    numbered = _numbered(files)
    if numbered is None:
        return files
    for (a, fa), (b, fb) in itertools.pairwise(numbered):
        if b != a + 1:
            raise InputError(
                f"{name}: shard {a + 1} is missing from {str(path)!r} (found {fa.name} then "
                f"{fb.name}); restore it or list the shards in {MANIFEST}"
            )
    return [f for _, f in numbered]


def read_manifest(manifest: Path, name: str) -> dict:
    """A shard folder's ``manifest.json``, checked.

    ``shards`` must be a list of file names and ``rows``, if there, one non-negative integer
    row count per shard.

    Args:
        manifest: the path of the ``manifest.json`` file.
        name: how errors name this source (``"P"``, ``"Q"``).

    Returns:
        The parsed JSON object, as is (other keys are kept).

    Raises:
        InputError: the file cannot be read or parsed, or does not have that form.

    Example:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.data.rows import read_manifest
        >>> with tempfile.TemporaryDirectory() as d:
        ...     m = Path(d) / "manifest.json"
        ...     _ = m.write_text(json.dumps({"shards": ["a.npy", "b.npy"], "rows": [3, 4]}))
        ...     print(read_manifest(m, "P"))
        ...     _ = m.write_text(json.dumps({"shards": ["a.npy"], "rows": [3, 4]}))
        ...     try:
        ...         read_manifest(m, "P")
        ...     except ValueError as e:
        ...         print(str(e).split("json' ")[1])
        {'shards': ['a.npy', 'b.npy'], 'rows': [3, 4]}
        ('rows' must list one row count for each file in 'shards')
    """
    try:
        spec = json.loads(manifest.read_text())
        if not isinstance(spec, dict) or "shards" not in spec:
            raise TypeError('it must be a JSON object {"shards": [file, ...], "rows": [n, ...]}')
        listed, rows = spec["shards"], spec.get("rows")
        if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
            raise TypeError("'shards' must be a list of file names")
        if rows is not None and (
            not isinstance(rows, list)
            or len(rows) != len(listed)
            or not all(type(r) is int and r >= 0 for r in rows)
        ):
            raise TypeError("'rows' must list one row count for each file in 'shards'")
    except Exception as e:
        raise InputError(f"{name}: cannot read {str(manifest)!r} ({short_reason(e)})") from None
    return spec


def _event_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Sample shape as wgan_lip sees it: ``(n,)`` -> ``(1,)``, ``(n, H, W)`` -> ``(1, H, W)``."""
    if len(shape) == 1:
        return (1,)
    if len(shape) == 3:
        return (1, *shape[1:])
    return tuple(shape[1:])


class NpyRows(Rows):
    """Rows of one ``.npy`` file or of a directory of ``.npy`` shards, memory-mapped.

    A file may hold samples ``(n,)`` (seen as ``(1,)``), ``(n, d)``, ``(n, H, W)`` (seen as
    ``(1, H, W)``) or ``(n, C, H, W)``, of any real or bool dtype; rows are returned as
    float32. Sources up to ``CHECK_UP_FRONT_BYTES`` (as float32) are scanned for NaN/Inf
    when opened; larger ones are checked as rows are read (:meth:`take` raises
    ``InputError`` naming the row).

    Args:
        path: the file, or the directory of shards (see :func:`shard_files`).
        name: how errors name this source (``"P"``, ``"Q"``).

    Raises:
        InputError: a file that cannot be read as ``.npy`` (with the reason), a directory
            without shards, a bad manifest or row count, a rank other than 1 to 4, a
            non-numeric or complex dtype, shards with different sample shapes, fewer than
            2 samples, an empty sample dimension, or (for a small source) NaN/Inf entries.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np, torch
        >>> from wgan_lip.data.rows import NpyRows
        >>> with tempfile.TemporaryDirectory() as d:
        ...     np.save(Path(d) / "part-0.npy", np.arange(6.0).reshape(3, 2))
        ...     np.save(Path(d) / "part-1.npy", np.arange(6.0, 10.0).reshape(2, 2))
        ...     rows = NpyRows(d, "P")
        ...     print(rows.n, rows.event_shape, rows.streamed, len(rows.files))
        ...     print(rows.take(torch.tensor([4, 0])))
        5 (2,) True 2
        tensor([[8., 9.],
                [0., 1.]])
    """

    def __init__(self, path: str | Path, name: str = "P"):
        self.path, self.name = Path(path), name
        files = shard_files(self.path, name) if self.path.is_dir() else [self.path]
        if not files:
            raise InputError(f"{name}: {str(self.path)!r} holds no .npy shards")
        shapes, counts, dtypes = [], [], []
        for f in files:
            arr = self._open(f)
            dtypes.append(arr.dtype)
            if arr.ndim not in (1, 2, 3, 4):
                raise InputError(
                    f"{name}: {str(f)!r} has shape {arr.shape}; expected (n,), (n, d), "
                    "(n, H, W) or (n, C, H, W) samples"
                )
            if arr.dtype == object or not (
                np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
            ):
                raise InputError(f"{name}: {str(f)!r} holds {arr.dtype}, not numbers")
            if np.issubdtype(arr.dtype, np.complexfloating):
                raise InputError(f"{name}: {str(f)!r}: complex samples are not supported")
            shapes.append(_event_shape(arr.shape))
            counts.append(int(arr.shape[0]))
        for f, s in zip(files, shapes, strict=True):
            if s != shapes[0]:
                raise InputError(
                    f"{name}: shard {f.name!r} has samples of shape {s}, but "
                    f"{files[0].name!r} has {shapes[0]}; all shards need the same width"
                )
        self._check_manifest_rows(files, counts)
        self._source_dtype = self._exact_dtype(dtypes)
        self.files = files
        self.file_event_shape = shapes[0]
        self.event_shape = shapes[0]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.n = int(self.offsets[-1])
        if self.n < 2:
            raise InputError(f"{name}: needs at least 2 samples, got {self.n}")
        if any(s == 0 for s in self.event_shape):
            raise InputError(f"{name}: samples have an empty dimension {self.event_shape}")
        self._maps: list[np.memmap] | None = None
        if self.nbytes <= CHECK_UP_FRONT_BYTES:
            self._check_finite_up_front()

    @property
    def streamed(self) -> bool:
        return True

    @property
    def description(self) -> str:
        kind = f"{len(self.files)} shards" if self.path.is_dir() else "memory-mapped"
        return f"{self.path} ({kind})"

    def _open(self, f: Path) -> np.ndarray:
        try:
            return np.load(f, mmap_mode="r", allow_pickle=False)
        except Exception as e:  # truncated, not a .npy, object dtype, unreadable
            try:
                with f.open("rb") as fh:
                    why = npy_trouble(fh, f.stat().st_size, e)
            except OSError:
                why = short_reason(e)
            raise InputError(f"{self.name}: cannot read {str(f)!r} as .npy ({why})") from None

    def _check_manifest_rows(self, files: list[Path], counts: list[int]) -> None:
        manifest = self.path / MANIFEST if self.path.is_dir() else None
        if manifest is None or not manifest.is_file():
            return
        rows = read_manifest(manifest, self.name).get("rows")
        if rows is None:
            return
        for f, want, got in zip(files, rows, counts, strict=False):
            if int(want) != got:
                raise InputError(
                    f"{self.name}: shard {f.name!r} has {got} rows, {MANIFEST} says {want}"
                )

    def _where(self, row: int) -> str:
        """Row ``row`` named by its file: "row 3 of 'x.npy'" or of one shard."""
        shard = int(np.searchsorted(self.offsets, row, side="right") - 1)
        kind = "shard " if self.path.is_dir() else ""
        return f"row {row - int(self.offsets[shard])} of {kind}{str(self.files[shard])!r}"

    def _check_finite_up_front(self) -> None:
        bad, first = 0, None
        for start in range(0, self.n, 65536):  # in chunks: memory stays bounded
            ids = torch.arange(start, min(start + 65536, self.n))
            x = self.take(ids, check=False, dtype=self.source_dtype)
            rows = (~torch.isfinite(x.reshape(len(x), -1))).any(dim=1)
            bad += int(rows.sum())
            if first is None and bool(rows.any()):
                first = start + int(rows.nonzero()[0])
        if bad:
            sample = f" (sample {first})" if self.path.is_dir() else ""
            raise InputError(
                f"{self.name}: {bad} of {self.n} samples contain NaN or Inf, the first is "
                f"{self._where(first)}{sample}; remove or fix those rows"
            )

    # Memory maps are per process: they are reopened after pickling (ddp_spawn workers).
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_maps"] = None
        return state

    def _mapped(self) -> list[np.ndarray]:
        if self._maps is None:
            self._maps = [self._open(f) for f in self.files]
        return self._maps

    def _drop(self, arr: np.memmap, first: int, last: int, row_bytes: int) -> None:
        """Drop the pages of rows ``first..last`` of one mapping (they stay in the page cache)."""
        mm = getattr(arr, "_mmap", None)
        if mm is None:
            return
        base = arr.offset % mmap.ALLOCATIONGRANULARITY  # where row 0 sits in the mapping
        start = (base + first * row_bytes) // mmap.PAGESIZE * mmap.PAGESIZE
        stop = min(len(mm), base + (last + 1) * row_bytes)
        mm.madvise(mmap.MADV_DONTNEED, start, stop - start)

    def _pieces(self, local: np.ndarray, row_bytes: int) -> np.ndarray:
        """Piece number of each sorted row: a piece may map at most ``PIECE_BYTES``.

        A page fault may map a whole page-cache folio (up to ``FOLIO_BYTES``) around the
        touched row, so scattered rows count that much each and neighbours their gap.
        """
        gaps = np.diff(local, prepend=local[0] - 1) * row_bytes
        cost = np.clip(gaps, row_bytes, max(row_bytes, FOLIO_BYTES))
        return np.cumsum(cost) // PIECE_BYTES

    def _rows_of(self, arr: np.ndarray, local: np.ndarray, dtype=np.float32) -> np.ndarray:
        if local[-1] - local[0] + 1 == len(local):  # contiguous: one slice
            block = arr[local[0] : local[-1] + 1]
        else:
            block = arr[local]
        return np.asarray(block, dtype=dtype).reshape(len(local), *self.file_event_shape)

    @property
    def source_dtype(self) -> np.dtype:
        """The dtype that holds every shard's values exactly (float32, float64 or int64)."""
        return self._source_dtype

    def _exact_dtype(self, file_dtypes: list[np.dtype]) -> np.dtype:
        """Decided once when the files are opened (every read goes through it)."""
        from .precision import exact_numpy

        dtypes = {np.dtype(exact_numpy(np.zeros(0, d), self.name).dtype) for d in file_dtypes}
        if len(dtypes) == 1:
            return dtypes.pop()
        return np.dtype(np.float64)  # mixed shards: float64 holds float32 and 32-bit ints

    def take_source(self, idx: torch.Tensor) -> torch.Tensor:
        return self.take(idx, dtype=self.source_dtype)

    def take(self, idx: torch.Tensor, check: bool = True, dtype=np.float32) -> torch.Tensor:
        idx_np = np.asarray(idx, dtype=np.int64).reshape(-1)
        if len(idx_np) and (idx_np.min() < 0 or idx_np.max() >= self.n):
            raise IndexError(f"{self.name}: row index out of range [0, {self.n})")
        order = np.argsort(idx_np, kind="stable")  # read in file order, then put back
        sorted_idx = idx_np[order]
        shard = np.searchsorted(self.offsets, sorted_idx, side="right") - 1
        out = np.empty((len(idx_np), *self.file_event_shape), dtype=dtype)
        maps = self._mapped()
        pos = 0
        for s in np.unique(shard):
            local = sorted_idx[shard == s] - self.offsets[s]
            row_bytes = maps[s].dtype.itemsize * math.prod(self.file_event_shape)  # per shard
            piece = self._pieces(local, row_bytes)
            bounds = np.flatnonzero(np.diff(piece)) + 1
            for part in np.split(local, bounds):
                out[order[pos : pos + len(part)]] = self._rows_of(maps[s], part, dtype)
                pos += len(part)
                # resident memory stays bounded: what this piece mapped is dropped now
                self._drop(maps[s], int(part[0]), int(part[-1]), row_bytes)
        t = torch.from_numpy(out)
        if check:
            self._check_finite(t, idx_np)
        return t.reshape(len(idx_np), *self.event_shape)

    def read(self, start: int, stop: int, check: bool = True) -> torch.Tensor:
        return self.take(torch.arange(start, min(stop, self.n)), check=check)

    def _check_finite(self, t: torch.Tensor, idx: np.ndarray) -> None:
        ok = torch.isfinite(t.reshape(len(t), -1)).all(dim=1)
        if not bool(ok.all()):
            row = int(idx[int((~ok).nonzero()[0])])
            raise InputError(
                f"{self.name}: sample {row} ({self._where(row)}) contains NaN or Inf; "
                "remove or fix that row"
            )

    def with_event_shape(self, shape: tuple[int, ...]) -> NpyRows:
        if math.prod(shape) != math.prod(self.event_shape):
            raise ValueError(f"cannot view {self.event_shape} samples as {shape}")
        view = object.__new__(NpyRows)
        view.__dict__.update(self.__getstate__())
        view.event_shape = tuple(shape)
        return view

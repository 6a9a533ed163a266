"""Sources that draw samples instead of storing them: a callable ``n -> samples`` (a trained
generator, a simulator), a torch ``IterableDataset``, or a map-style ``Dataset``.

A callable becomes :class:`SampledRows`: a :class:`Rows` of nominal size ``n`` where
*every read draws fresh samples* (row indices only say how many), so each training batch,
the monitor checks and the held-out set are independent new draws. A map-style dataset is
finite and becomes :class:`DatasetRows`, read by index.

An ``IterableDataset`` is read from its start; a stream is **never recycled**:

* if it ends within ``STREAM_READ_ROWS`` samples, it is a finite dataset: every sample is
  kept in memory and split like an array (held-out rows are never training rows);
* otherwise it is an endless stream: the samples read so far are served first, then the
  stream goes on, each sample used once. Should it end after all, the run stops with a
  one-line error instead of starting it again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from ..errors import InputError
from .precision import INTEGER, exact_tensor
from .rows import Rows

SAMPLER_ROWS = 50_000  # nominal size of a sampled side: 20% held out = 10,000 fresh rows
_DRAW_CHUNK = 8192  # rows per call to the sampler
STREAM_READ_ROWS = 50_000  # an iterable dataset that ends within this many is a finite one
STREAM_READ_BYTES = 512 * 2**20  # ... or within this much memory (as float32)


def _first_tensor(item, name: str) -> torch.Tensor:
    """A sample, or the first element of an ``(x, y)`` item, as a CPU tensor in a dtype that
    holds it exactly (:func:`~wgan_lip.data.precision.exact_tensor`)."""
    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    if isinstance(item, dict) and item:
        item = next(iter(item.values()))
    try:
        t = torch.as_tensor(np.asarray(item) if not isinstance(item, torch.Tensor) else item)
    except (TypeError, ValueError) as e:
        raise InputError(
            f"{name}: the dataset returned {type(item).__name__}, not samples ({e})"
        ) from None
    if t.is_complex():
        raise InputError(
            f"{name}: the dataset returned complex samples; pass real and "
            "imaginary parts as separate features"
        )
    if not (
        t.is_floating_point()
        or t.dtype in (*INTEGER, torch.int8, torch.int16, torch.uint8, torch.bool)
    ):
        raise InputError(f"{name}: the dataset returned samples of dtype {t.dtype}")
    return exact_tensor(t, name)


def _check_rows(x: torch.Tensor, n: int, shape: tuple[int, ...] | None, name: str) -> torch.Tensor:
    if x.dim() == 0:
        raise InputError(
            f"{name}: the sampler returned a single number when asked for {n} "
            "samples; return an array of shape (n, ...)"
        )
    if x.dim() == 1:
        x = x[:, None]
    elif x.dim() == 3:
        x = x[:, None]
    if x.shape[0] != n:
        raise InputError(f"{name}: the sampler returned {x.shape[0]} samples when asked for {n}")
    if shape is not None and tuple(x.shape[1:]) != shape:
        raise InputError(
            f"{name}: the sampler returned samples of shape {tuple(x.shape[1:])}, "
            f"earlier ones had {shape}"
        )
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{name}: the sampler returned NaN or Inf")
    return x.contiguous()


class SampledRows(Rows):
    """An endless source seen as ``n`` rows; every ``take`` draws ``len(idx)`` fresh samples.

    ``draw(k)`` must return ``k`` samples (a tensor or array of shape ``(k, ...)``, or a
    tuple/list whose first element is one); it is called under ``torch.no_grad``, at most
    8192 samples at a time, and its result is moved to the CPU in a dtype that holds it
    exactly (float32, float64 or int64; :meth:`take` gives float32). Samples ``(k,)``
    are seen as ``(k, 1)`` and ``(k, H, W)`` as ``(k, 1, H, W)``. The constructor draws 2
    samples to learn the sample shape.

    Args:
        draw: the sampler, ``k -> k`` samples.
        n: the nominal number of rows (how many a full pass reads).
        name: how errors name this source (``"P"``, ``"Q"``).
        description: how reports describe this source.

    Raises:
        InputError: ``draw`` raised (the message says what), returned something that is not
            an array, the wrong number of samples, samples of another shape than before,
            NaN or Inf, or samples with an empty dimension.

    Example:
        >>> import torch
        >>> from wgan_lip.data.samplers import SampledRows
        >>> g = torch.Generator().manual_seed(0)
        >>> rows = SampledRows(lambda k: torch.randn(k, 3, generator=g), n=100)
        >>> rows.n, rows.event_shape, rows.fresh
        (100, (3,), True)
        >>> a, b = rows.take(torch.arange(4)), rows.take(torch.arange(4))
        >>> a.shape, bool(torch.equal(a, b))  # the same indices, new samples
        (torch.Size([4, 3]), False)
        >>> SampledRows(lambda k: torch.zeros(k - 1, 2), name="Q")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: Q: the sampler returned 1 samples when asked for 2
    """

    def __init__(
        self,
        draw: Callable[[int], object],
        n: int = SAMPLER_ROWS,
        name: str = "P",
        description: str = "sampler",
    ) -> None:
        self._draw, self.name, self.n, self.description = draw, name, int(n), description
        self.event_shape = ()  # set from a first draw
        probe = self._call(2, check_shape=False)
        self.event_shape = tuple(int(s) for s in probe.shape[1:])
        if any(s == 0 for s in self.event_shape):
            raise InputError(f"{name}: the sampler's samples have an empty dimension")

    def _call(self, k: int, check_shape: bool = True) -> torch.Tensor:
        with torch.no_grad():
            try:
                out = self._draw(k)
            except InputError:
                raise
            except Exception as e:  # the user's code failed: say where
                raise InputError(
                    f"{self.name}: the sampler failed when asked for {k} samples "
                    f"({type(e).__name__}: {e})"
                ) from e
        if isinstance(out, (tuple, list)) and out and not isinstance(out[0], (int, float)):
            out = out[0]
        try:
            t = out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
        except (TypeError, ValueError):
            raise InputError(
                f"{self.name}: the sampler returned {type(out).__name__}, not an array of samples"
            ) from None
        t = exact_tensor(t, self.name)
        return _check_rows(t, k, self.event_shape if check_shape else None, self.name)

    def take_source(self, idx: torch.Tensor) -> torch.Tensor:
        k = len(idx)
        if k == 0:
            return torch.zeros(0, *self.event_shape)
        return torch.cat([self._call(min(_DRAW_CHUNK, k - s)) for s in range(0, k, _DRAW_CHUNK)])

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        return self.take_source(idx).to(torch.float32)

    @property
    def fresh(self) -> bool:
        return True

    def with_event_shape(self, shape: tuple[int, ...]) -> SampledRows:
        if math.prod(shape) != math.prod(self.event_shape):
            raise ValueError(f"cannot view {self.event_shape} samples as {shape}")
        view = object.__new__(SampledRows)
        view.__dict__.update(self.__dict__)
        inner = self._draw
        view._draw = lambda k: torch.as_tensor(inner(k)).reshape(k, *shape)
        view.event_shape = tuple(shape)
        return view


def _stack(items: list[torch.Tensor]) -> torch.Tensor:
    """Stack samples; mixed dtypes (an int item among floats) meet in float64."""
    if len({t.dtype for t in items}) > 1:
        items = [t.to(torch.float64) for t in items]
    return torch.stack(items)


class _StreamDraw:
    """``k -> k`` items of an endless iterable dataset: the items read ahead first, then the
    stream, each item once. The stream is never started again: if it ends, the draw fails
    with a one-line error."""

    def __init__(self, read: list[torch.Tensor], it: Iterator, name: str) -> None:
        self._read, self._it, self.name = read, it, name
        self.used = 0

    def __call__(self, k: int) -> torch.Tensor:
        items = self._read[:k]
        del self._read[:k]
        while len(items) < k:
            try:
                items.append(_first_tensor(next(self._it), self.name))
            except StopIteration:
                raise InputError(
                    f"{self.name}: the stream ended after {self.used + len(items):,} samples "
                    "and a stream is never read twice; pass fewer steps (--steps), or a "
                    f"finite dataset of at most {STREAM_READ_ROWS:,} samples (read whole)"
                ) from None
        self.used += k
        return _stack(items)


def stream_rows(dataset: IterableDataset, name: str, n: int = SAMPLER_ROWS) -> Rows:
    """The rows of an iterable dataset, read once from its start (see the module docstring).

    Args:
        dataset: the stream.
        name: how errors name this source (``"P"``, ``"Q"``).
        n: the nominal size of an endless stream.

    Returns:
        A :class:`~wgan_lip.data.rows.TensorRows` of every sample when the stream ends
        within ``STREAM_READ_ROWS`` samples (and ``STREAM_READ_BYTES``), else a
        :class:`SampledRows` that goes on reading it.

    Raises:
        InputError: a stream that yields fewer than 2 samples, or items that are not
            numeric samples of one shape.

    Example:
        >>> import torch
        >>> from torch.utils.data import IterableDataset
        >>> from wgan_lip.data.samplers import stream_rows
        >>> class Ten(IterableDataset):
        ...     def __iter__(self):
        ...         return iter(torch.arange(10.0))
        >>> rows = stream_rows(Ten(), "P")
        >>> type(rows).__name__, rows.n, rows.description
        ('TensorRows', 10, 'Ten (10 samples, read to its end)')
    """
    from .rows import TensorRows

    it = iter(dataset)
    items: list[torch.Tensor] = []
    nbytes, ended = 0, False
    while len(items) < STREAM_READ_ROWS and nbytes < STREAM_READ_BYTES:
        try:
            items.append(_first_tensor(next(it), name))
        except StopIteration:
            ended = True
            break
        nbytes += 4 * items[-1].numel()
    label = type(dataset).__name__
    if ended:
        if len(items) < 2:
            raise InputError(
                f"{name}: the iterable dataset yielded {len(items)} samples; need at least 2"
            )
        x = _check_rows(_stack(items), len(items), None, name)
        rows = TensorRows(x)
        rows.description = f"{label} ({len(items):,} samples, read to its end)"
        return rows
    return SampledRows(_StreamDraw(items, it, name), n, name, f"{label} (stream)")


class DatasetRows(Rows):
    """A map-style torch ``Dataset`` (``len`` and ``[i]``; items ``x`` or ``(x, y)``) as rows.

    ``take`` reads the items one by one, keeps the first element of a tuple, list or dict
    item, and returns float32 on the CPU (``take_source``: the items' exact dtype). Items
    ``(d,)`` give samples ``(d,)``, scalars ``(1,)``, ``(H, W)`` give ``(1, H, W)``.
    :meth:`with_event_shape` reads every item into memory.

    Args:
        dataset: the dataset: ``len(dataset)`` and ``dataset[i]`` for ``0 <= i < len``.
        name: how errors name this source (``"P"``, ``"Q"``).

    Raises:
        InputError: a dataset without a length, fewer than 2 items, or items that are not
            numeric samples (or contain NaN or Inf: checked on the first item here, on the
            others as they are read).

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> from wgan_lip.data.samplers import DatasetRows
        >>> ds = TensorDataset(torch.arange(10.0).reshape(5, 2), torch.zeros(5))
        >>> rows = DatasetRows(ds)
        >>> rows.n, rows.event_shape, rows.description
        (5, (2,), 'TensorDataset (5 samples)')
        >>> rows.take(torch.tensor([4, 1]))
        tensor([[8., 9.],
                [2., 3.]])
    """

    def __init__(self, dataset: Dataset, name: str = "P") -> None:
        self.dataset, self.name = dataset, name
        try:
            self.n = len(dataset)  # type: ignore[arg-type]
        except TypeError:
            raise InputError(f"{name}: the dataset has no length; use an IterableDataset") from None
        if self.n < 2:
            raise InputError(f"{name}: needs at least 2 samples, got {self.n}")
        first = _check_rows(_first_tensor(dataset[0], name)[None], 1, None, name)
        self.event_shape = tuple(int(s) for s in first.shape[1:])
        self.description = f"{type(dataset).__name__} ({self.n} samples)"

    def take_source(self, idx: torch.Tensor) -> torch.Tensor:
        if len(idx) == 0:
            return torch.zeros(0, *self.event_shape)
        x = _stack([_first_tensor(self.dataset[int(i)], self.name) for i in idx])
        return _check_rows(
            x.reshape(len(idx), *self.event_shape), len(idx), self.event_shape, self.name
        )

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        return self.take_source(idx).to(torch.float32)

    def with_event_shape(self, shape: tuple[int, ...]) -> Rows:
        from .rows import TensorRows

        return TensorRows(self.take_source(torch.arange(self.n)).reshape(self.n, *shape))


def sampler_rows(source, name: str, n: int = SAMPLER_ROWS) -> Rows | None:
    """The :class:`Rows` of a sampler-like source, or None if ``source`` is not one.

    An ``IterableDataset`` is read by :func:`stream_rows` (never recycled), a map-style
    ``Dataset`` becomes a :class:`DatasetRows`, and any other callable (not a tensor, array
    or class) a :class:`SampledRows` that calls it.

    Args:
        source: the candidate source.
        name: how errors name this source (``"P"``, ``"Q"``).
        n: the nominal size of a sampled source (unused for a map-style dataset).

    Returns:
        The rows, or ``None`` for anything else (a tensor, an array, a path, a class).

    Raises:
        InputError: from :class:`SampledRows` or :class:`DatasetRows`: a source that does not
            produce valid samples (an empty iterable dataset, for one).

    Example:
        >>> import torch
        >>> from wgan_lip.data.samplers import sampler_rows
        >>> def two_d(k):
        ...     return torch.ones(k, 2)
        >>> rows = sampler_rows(two_d, "P", n=1000)
        >>> type(rows).__name__, rows.n, rows.description
        ('SampledRows', 1000, 'sampler two_d')
        >>> sampler_rows(torch.zeros(3, 2), "P") is None
        True
    """
    if isinstance(source, IterableDataset):
        return stream_rows(source, name, n)
    if isinstance(source, Dataset):
        return DatasetRows(source, name)
    if callable(source) and not isinstance(source, (torch.Tensor, np.ndarray, type)):
        label = getattr(source, "__name__", type(source).__name__)
        return SampledRows(source, n, name, f"sampler {label}")
    return None

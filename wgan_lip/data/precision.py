"""Keep the user's data at the user's precision until it is centred.

W1 does not change when both samples move by the same vector, but float32 does: two
samples 0.2 apart near 1e8 are the same float32 number (its spacing there is 8). So every
source keeps its values in a *source dtype* that holds them exactly, a common offset (the
pooled mean of both sides) is subtracted in that precision, and only the centred values are
cast down:

* float32 for the dtypes float32 holds exactly (bool, 8/16-bit integers, float16,
  bfloat16, float32);
* float64 for float64;
* int64 for 32/64-bit integers (an integral offset is subtracted exactly in int64);
* extended precision (``np.longdouble``) only when float64 holds it exactly; otherwise the
  data is refused in one line, since no computation here could honour its resolution.

Training reads float32 of the centred values; the certified numbers are computed in
float64 on the centred values (:meth:`wgan_lip.data.rows.Rows.take_exact`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError, short_reason

FLOAT32_EXACT = (
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.float16,
    torch.bfloat16,
    torch.float32,
)
INTEGER = (torch.int32, torch.int64, torch.uint16, torch.uint32, torch.uint64)
OFFSET_ROWS = 10_000  # per side: rows the common offset is computed from


def exact_numpy(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` in a dtype torch holds without loss: float32, float64 or int64.

    A one-line error says why when no such dtype exists.

    Args:
        arr: a numeric or bool array.
        name: how errors name the source.

    Returns:
        The array itself when its dtype already qualifies, else a converted copy.

    Raises:
        InputError: complex values, unsigned 64-bit integers of 2**63 or more, extended
            precision values that float64 would round, or a dtype that is not a number.

    Example:
        >>> import numpy as np
        >>> from wgan_lip.data.precision import exact_numpy
        >>> exact_numpy(np.array([1, 2], dtype=np.uint32), "P").dtype
        dtype('int64')
        >>> exact_numpy(np.array([0.5], dtype=np.float16), "P").dtype
        dtype('float32')
    """
    kind = arr.dtype.kind
    if kind == "c":
        raise InputError(
            f"{name}: complex samples are not supported; pass real and imaginary "
            "parts as separate columns"
        )
    if kind == "b" or (kind in "iu" and arr.dtype.itemsize <= 2):
        return arr.astype(np.float32)
    if kind in "iu":
        if kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() >= 2**63:
            raise InputError(
                f"{name}: unsigned integers of 2**63 or more are not supported; "
                "subtract an offset first"
            )
        return arr.astype(np.int64, copy=False)
    if kind != "f":
        raise InputError(f"{name}: expected numeric samples, got dtype {arr.dtype}")
    if arr.dtype.itemsize <= 4:
        return arr.astype(np.float32, copy=False)
    if arr.dtype == np.float64:
        return arr
    as64 = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        same = (as64.astype(arr.dtype) == arr) | (np.isnan(arr) & np.isnan(as64))
    if not bool(np.all(same)):
        raise InputError(
            f"{name}: {arr.dtype} values that float64 cannot represent exactly; round them to "
            "float64 yourself if that precision is enough"
        )
    return as64


def exact_tensor(t: torch.Tensor, name: str) -> torch.Tensor:
    """``t`` on the CPU in float32, float64 or int64, whichever holds its values exactly.

    Args:
        t: a real or bool tensor (any device, dense or sparse).
        name: how errors name the source.

    Returns:
        A CPU tensor (the input itself when nothing needs converting).

    Raises:
        InputError: complex values, or unsigned 64-bit values of 2**63 or more.

    Example:
        >>> import torch
        >>> from wgan_lip.data.precision import exact_tensor
        >>> exact_tensor(torch.tensor([1, 2], dtype=torch.int32), "P").dtype
        torch.int64
        >>> exact_tensor(torch.tensor([1.5], dtype=torch.bfloat16), "P").dtype
        torch.float32
    """
    t = t.detach().cpu()
    if t.layout != torch.strided:  # sparse
        t = t.to_dense()
    if t.is_complex():
        raise InputError(
            f"{name}: complex samples are not supported; pass real and imaginary "
            "parts as separate columns"
        )
    if t.dtype in FLOAT32_EXACT:
        return t.to(torch.float32)
    if t.dtype == torch.float64:
        return t
    if t.dtype in INTEGER:
        if t.dtype == torch.uint64 and t.numel() and int(t.max()) >= 2**63:
            raise InputError(
                f"{name}: unsigned integers of 2**63 or more are not supported; "
                "subtract an offset first"
            )
        return t.to(torch.int64)
    raise InputError(f"{name}: expected numeric samples, got dtype {t.dtype}")


def exact_samples(x, name: str) -> torch.Tensor:
    """Any array-like of samples (tensor, numpy array, nested list) as an exact CPU tensor.

    The one conversion of in-memory samples: :func:`exact_numpy` for arrays and lists,
    :func:`exact_tensor` for tensors. The shape is left as it is.

    Args:
        x: the samples.
        name: how errors name the source.

    Returns:
        A CPU tensor in float32, float64 or int64.

    Raises:
        InputError: ragged nested lists, or a dtype that no exact dtype holds (see
            :func:`exact_numpy`).

    Example:
        >>> from wgan_lip.data.precision import exact_samples
        >>> exact_samples([[1, 2], [3, 4]], "P").dtype
        torch.int64
        >>> exact_samples([[1], [2, 3]], "P")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: P: cannot make an array of the samples (...); give every
        sample the same shape
    """
    if isinstance(x, torch.Tensor):
        return exact_tensor(x, name)
    try:
        arr = np.asarray(x)
    except Exception as e:  # ragged nested lists and the like
        raise InputError(
            f"{name}: cannot make an array of the samples ({short_reason(e)}); "
            "give every sample the same shape"
        ) from None
    return exact_tensor(torch.from_numpy(np.ascontiguousarray(exact_numpy(arr, name))), name)


def centred(x: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    """``x - offset`` in float64, computed in ``x``'s own precision.

    Integers have an integral offset subtracted in int64 (exact), floats in float64 (exact
    when ``x`` and ``offset`` are within a factor 2 of each other, Sterbenz's lemma, which is
    where cancellation would otherwise hurt).

    Args:
        x: rows in a source dtype (float32, float64 or int64).
        offset: a float64 tensor broadcastable to one row, or None (no shift).

    Returns:
        A float64 tensor of ``x``'s shape.

    Example:
        >>> import torch
        >>> from wgan_lip.data.precision import centred
        >>> x = torch.tensor([[1_700_000_000_000_000_001]])
        >>> centred(x, torch.tensor([1.7e18], dtype=torch.float64)).item()
        1.0
    """
    if offset is None:
        return x.to(torch.float64)
    if not x.is_floating_point():
        return (x.to(torch.int64) - offset.to(torch.int64)).to(torch.float64)
    return x.to(torch.float64) - offset


def common_offset(parts: list[torch.Tensor]) -> torch.Tensor:
    """The pooled mean of sample rows, in float64; integral when every part is integers.

    Args:
        parts: rows ``(n_i, *event)`` of each side, in source dtypes, at least one row.

    Returns:
        A float64 tensor of the event shape.

    Example:
        >>> import torch
        >>> from wgan_lip.data.precision import common_offset
        >>> common_offset([torch.tensor([[1e8], [1e8 + 1]], dtype=torch.float64),
        ...                torch.tensor([[1e8 + 2]], dtype=torch.float64)]).item()
        100000001.0
        >>> common_offset([torch.tensor([[3], [5]])]).item()  # integers: an integer
        4.0
    """
    rows = [p for p in parts if len(p)]
    ints = all(not p.is_floating_point() for p in rows)
    if ints:
        # mean of int64 rows without overflow: shift by the first row, exactly
        base = rows[0][0].to(torch.int64)
        total = sum(((p.to(torch.int64) - base).to(torch.float64)).sum(0) for p in rows)
        n = sum(len(p) for p in rows)
        return (base.to(torch.float64) + torch.round(total / n)).to(torch.float64)
    first = rows[0][0].to(torch.float64)
    total = sum((p.to(torch.float64) - first).sum(0) for p in rows)
    n = sum(len(p) for p in rows)
    return first + total / n


def check_float32_range(x: torch.Tensor, name: str) -> None:
    """Refuse centred data that float32 cannot hold (it would train on Inf or on zeros).

    Args:
        x: centred float64 rows.
        name: how errors name the source.

    Raises:
        InputError: entries beyond float32's range, or a spread so small that float32
            flushes it to zero.

    Example:
        >>> import torch
        >>> from wgan_lip.data.precision import check_float32_range
        >>> check_float32_range(torch.tensor([[1e-300], [-1e-300]], dtype=torch.float64), "P")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: P: after centring, the samples spread over 1e-300, below
        float32's range; rescale the data (W1 scales with it)
    """
    if not len(x):
        return
    top = float(x.abs().max())
    f32 = torch.finfo(torch.float32)
    if top > f32.max / 4:
        raise InputError(
            f"{name}: after centring, entries reach {top:.3g}, beyond float32's "
            "range; rescale the data (W1 scales with it)"
        )
    if 0 < top < f32.tiny * 2**20:
        raise InputError(
            f"{name}: after centring, the samples spread over {top:.3g}, below "
            "float32's range; rescale the data (W1 scales with it)"
        )

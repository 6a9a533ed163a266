"""Input validation shared by the layers: one clear message for the usual mistakes."""

from __future__ import annotations

import math

import torch

from ..errors import InputError


def check_float_input(
    x: torch.Tensor,
    layer: str,
    *,
    min_dim: int | None = None,
    ndim: int | None = None,
    channels: int | None = None,
) -> None:
    """Raise ``TypeError``/``ValueError`` naming what ``layer`` expected and what it got
    (``channels``: the size of dimension 1)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{layer}: expected a floating-point tensor, got dtype {x.dtype}; "
            "convert with x.float()"
        )
    if ndim is not None and x.dim() != ndim:
        raise ValueError(
            f"{layer}: expected a {ndim}-D input, got shape {tuple(x.shape)} ({x.dim()}-D)"
        )
    if min_dim is not None and x.dim() < min_dim:
        raise ValueError(
            f"{layer}: expected an input with at least {min_dim} dims (batch, channels, ...), "
            f"got shape {tuple(x.shape)}"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer}: expected {channels} input channels, got shape {tuple(x.shape)}")


def check_positive_int(value: object, name: str, layer: str) -> int:
    """``value`` when it is a positive integer (not a bool); else an ``InputError`` (a
    ``ValueError``) naming ``layer``'s argument ``name``: a size of zero or less has no
    map to certify."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return value


def check_nonnegative_float(value: object, name: str, layer: str) -> float:
    """``float(value)`` when it is a finite real ``>= 0``; else an ``InputError`` naming
    ``layer``'s argument ``name`` (a NaN or negative smoothing term breaks the bound)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise InputError(f"{layer}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def same_tensor(snapshot: torch.Tensor | None, current: torch.Tensor) -> bool:
    """Whether a cache's ``snapshot`` still equals ``current`` entry by entry (and in shape,
    dtype and device).

    Caches of computed weights key on the contents, not on ``current._version``: writes
    through ``.data`` (``p.data.mul_(0.9).add_(...)``, a hand-written EMA) do not bump the
    version counter. One read of the weight is far cheaper than what the caches save
    (Björck iterations, Cayley solves). NaN entries never compare equal: recomputed.
    """
    return (
        snapshot is not None
        and snapshot.shape == current.shape
        and snapshot.dtype == current.dtype
        and snapshot.device == current.device
        and bool(torch.equal(snapshot, current.detach()))
    )

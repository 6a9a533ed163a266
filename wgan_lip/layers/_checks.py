"""Input validation shared by the layers: one clear message for the usual mistakes."""

from __future__ import annotations

import torch


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

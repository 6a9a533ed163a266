"""Draw 2-D samples of P and Q over the level sets of a critic (matplotlib, headless)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..plotting import critic_figure, save_atomic


def check_plot_path(path: str | os.PathLike) -> Path:
    """Refuse, before any work, a path whose folder is missing or whose format is unknown."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    path = Path(path)
    if path.is_dir():
        raise InputError(f"--plot: {str(path)!r} is a folder; give a file name such as "
                         f"{str(path / 'critic.png')!r}")  # fmt: skip
    if not path.parent.exists():
        raise InputError(f"--plot: folder {str(path.parent)!r} does not exist")
    fmt = path.suffix.lower().lstrip(".")
    supported = Figure().canvas.get_supported_filetypes()
    if fmt not in supported:
        raise InputError(
            f"--plot: unknown image format {path.suffix or '(none)'!r}; use one of "
            f"{', '.join('.' + k for k in sorted(supported))}"
        )
    return path


def plot_critic_2d(
    critic: nn.Module,
    p: torch.Tensor,
    q: torch.Tensor,
    path: str | os.PathLike,
    *,
    title: str = "",
    max_points: int = 2000,
    resolution: int = 200,
) -> Path:
    """Scatter ``p`` and ``q`` (2-D) over the critic's filled contours; write ``path``.

    The file is written to a temporary name and renamed, so a failure leaves nothing.
    """
    path = check_plot_path(path)
    p, q = p.reshape(len(p), -1).float(), q.reshape(len(q), -1).float()
    if p.shape[1] != 2:
        raise InputError(f"--plot draws 2-D data; these samples have {p.shape[1]} dimensions")
    fig = critic_figure(critic, p, q, title=title, max_points=max_points, resolution=resolution)
    return save_atomic(lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"), path)

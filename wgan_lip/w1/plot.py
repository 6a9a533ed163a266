"""Draw 2-D samples of P and Q over the level sets of a critic (matplotlib, headless)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..paths import check_writable_folder, save_atomic
from ..plotting import critic_figure


def check_plot_path(path: str | os.PathLike) -> Path:
    """Refuse, before any work, a path whose folder is missing or whose format is unknown.

    Selects matplotlib's Agg backend unless a backend was already chosen. The format is the
    suffix, one of those matplotlib's Agg canvas writes (``.png``, ``.pdf``, ``.svg``...).

    Args:
        path: the image file to write (``str`` or path-like); it may not exist yet.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        InputError: ``path`` is a folder, its folder does not exist or is not writable, or
            its suffix is not a format matplotlib can write.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.w1.plot import check_plot_path
        >>> with tempfile.TemporaryDirectory() as d:
        ...     print(check_plot_path(Path(d) / "critic.png").name)
        ...     try:
        ...         check_plot_path(Path(d) / "critic.xyz")
        ...     except ValueError as e:
        ...         print(str(e).split(";")[0])
        critic.png
        --plot: unknown image format '.xyz'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"--plot: {str(path)!r} is a folder; give a file name such as "
            f"{str(path / 'critic.png')!r}"
        )
    if not path.parent.exists():
        raise InputError(f"--plot: folder {str(path.parent)!r} does not exist")
    check_writable_folder(path.parent, "--plot")  # refused now, not after training
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
    The figure is :func:`wgan_lip.plotting.critic_figure`'s, saved at 120 dpi.

    Args:
        critic: a critic of 2-D points (see :func:`~wgan_lip.plotting.critic_figure`).
        p: samples of P with two entries each, ``(n, 2)`` (or ``(n, ...)``, flattened).
        q: samples of Q, likewise (only ``p``'s width is checked).
        path: the image file (see :func:`check_plot_path`).
        title: the figure's title; empty gives ``"critic level sets"``.
        max_points: at most this many points of each sample are drawn.
        resolution: the critic is evaluated on a ``resolution x resolution`` grid.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        InputError: a bad ``path`` (see :func:`check_plot_path`), or ``p`` not 2-D.

    Example:
        >>> import os, tempfile
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.w1.plot import plot_critic_2d
        >>> critic = nn.Linear(2, 1)
        >>> p, q = torch.randn(30, 2), torch.randn(30, 2) + 1
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = plot_critic_2d(critic, p, q, os.path.join(d, "c.png"), resolution=10)
        ...     print(out.name, out.stat().st_size > 0, os.listdir(d))
        c.png True ['c.png']
        >>> plot_critic_2d(critic, torch.randn(5, 3), q, "c.png")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: --plot draws 2-D data; these samples have 3 dimensions
    """
    path = check_plot_path(path)
    p, q = p.reshape(len(p), -1).float(), q.reshape(len(q), -1).float()
    if p.shape[1] != 2:
        raise InputError(f"--plot draws 2-D data; these samples have {p.shape[1]} dimensions")
    fig = critic_figure(critic, p, q, title=title, max_points=max_points, resolution=resolution)
    return save_atomic(lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"), path)

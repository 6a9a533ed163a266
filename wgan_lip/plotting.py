"""Headless matplotlib figures shared by W1 estimation and WGANs (no pyplot state)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def critic_figure(
    critic: nn.Module,
    p: torch.Tensor,
    q: torch.Tensor,
    *,
    title: str = "",
    labels: tuple[str, str] = ("P", "Q"),
    max_points: int = 2000,
    resolution: int = 200,
):
    """2-D samples ``p`` (red) and ``q`` (blue) over the filled level sets of ``critic``.

    Returns a ``matplotlib.figure.Figure`` (Agg canvas, never shown). The critic is put in
    eval mode for the grid and restored afterwards.
    """
    from matplotlib.figure import Figure

    p, q = p.reshape(len(p), -1).float().cpu(), q.reshape(len(q), -1).float().cpu()
    both = torch.cat([p, q])
    lo, hi = both.min(0).values, both.max(0).values
    pad = 0.1 * (hi - lo).clamp_min(1e-6)
    lo, hi = lo - pad, hi + pad
    xs = torch.linspace(float(lo[0]), float(hi[0]), resolution)
    ys = torch.linspace(float(lo[1]), float(hi[1]), resolution)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    was_training = critic.training
    critic.eval()
    try:
        device = next(iter([*critic.parameters(), *critic.buffers()]), torch.zeros(())).device
        grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(device)
        z = critic(grid).reshape(resolution, resolution).cpu()
    finally:
        critic.train(was_training)

    fig = Figure(figsize=(6, 5.2))
    ax = fig.add_subplot()
    cs = ax.contourf(gx.numpy(), gy.numpy(), z.numpy(), levels=30, cmap="RdBu_r", alpha=0.8)
    ax.contour(gx.numpy(), gy.numpy(), z.numpy(), levels=15, colors="k", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="critic f")
    g = torch.Generator().manual_seed(0)
    for x, color, label in ((p, "tab:red", labels[0]), (q, "tab:blue", labels[1])):
        idx = torch.randperm(len(x), generator=g)[:max_points]
        ax.scatter(x[idx, 0], x[idx, 1], s=3, c=color, label=label, alpha=0.6)
    ax.legend(loc="upper right")
    ax.set_title(title or "critic level sets")
    ax.set_aspect("equal", adjustable="datalim")
    return fig


def figure_to_tensor(fig, dpi: int = 80) -> torch.Tensor:
    """Render a figure to a ``(3, H, W)`` uint8 tensor (for loggers that take arrays)."""
    fig.set_dpi(dpi)
    canvas = fig.canvas
    if not hasattr(canvas, "buffer_rgba"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = torch.from_numpy(np.asarray(canvas.buffer_rgba()).copy())
    return rgba[..., :3].permute(2, 0, 1).contiguous()


def save_atomic(write, path: str | os.PathLike) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it.

    A failure leaves no file behind, and readers never see a half-written one. The file gets
    the permissions a plain ``open(path, "w")`` would give (``0o666`` less the umask), not
    ``mkstemp``'s private ``0o600``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

"""Draw 2-D samples of P and Q over the level sets of a critic (matplotlib, headless)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError


def check_plot_path(path: str | os.PathLike) -> Path:
    """Refuse, before any work, a path whose folder is missing or whose format is unknown."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    path = Path(path)
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


@torch.no_grad()
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
    from matplotlib.figure import Figure

    path = check_plot_path(path)
    p, q = p.reshape(len(p), -1).float(), q.reshape(len(q), -1).float()
    if p.shape[1] != 2:
        raise InputError(f"--plot draws 2-D data; these samples have {p.shape[1]} dimensions")
    both = torch.cat([p, q])
    lo, hi = both.min(0).values, both.max(0).values
    pad = 0.1 * (hi - lo).clamp_min(1e-6)
    lo, hi = lo - pad, hi + pad
    xs = torch.linspace(float(lo[0]), float(hi[0]), resolution)
    ys = torch.linspace(float(lo[1]), float(hi[1]), resolution)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    critic.eval()
    device = next(critic.parameters()).device
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(device)
    z = critic(grid).reshape(resolution, resolution).cpu()

    fig = Figure(figsize=(6, 5.2))
    ax = fig.add_subplot()
    cs = ax.contourf(gx.numpy(), gy.numpy(), z.numpy(), levels=30, cmap="RdBu_r", alpha=0.8)
    ax.contour(gx.numpy(), gy.numpy(), z.numpy(), levels=15, colors="k", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="critic f")
    g = torch.Generator().manual_seed(0)
    for x, color, label in ((p, "tab:red", "P"), (q, "tab:blue", "Q")):
        idx = torch.randperm(len(x), generator=g)[:max_points]
        ax.scatter(x[idx, 0], x[idx, 1], s=3, c=color, label=label, alpha=0.6)
    ax.legend(loc="upper right")
    ax.set_title(title or "critic level sets")
    ax.set_aspect("equal", adjustable="datalim")
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path

"""Headless matplotlib figures shared by W1 estimation and WGANs (no pyplot state)."""

from __future__ import annotations

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

    Args:
        critic: a critic of 2-D points: called on a float32 ``(resolution**2, 2)`` grid on
            the device of its first parameter or buffer (CPU if it has none), it returns
            ``resolution**2`` scores (any shape with that many entries).
        p: samples of the first distribution, ``(n, 2)`` (or ``(n, ...)`` with two entries
            per sample; they are flattened), any float dtype and device.
        q: samples of the second distribution, likewise ``(m, 2)``.
        title: the axes' title; empty gives ``"critic level sets"``.
        labels: the legend's names of ``p`` and ``q``.
        max_points: at most this many points of each sample are drawn (a fixed random subset,
            seeded, so the figure is reproducible).
        resolution: the grid has ``resolution x resolution`` points spanning the samples'
            bounding box, padded by 10% on each side.

    Returns:
        The ``matplotlib.figure.Figure``, with one axes and a colorbar.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.plotting import critic_figure, figure_to_tensor
        >>> _ = torch.manual_seed(0)
        >>> critic = nn.Linear(2, 1)
        >>> fig = critic_figure(critic, torch.randn(50, 2), torch.randn(50, 2) + 2,
        ...                     title="demo", resolution=20)
        >>> fig.axes[0].get_title(), len(fig.axes), critic.training
        ('demo', 2, True)
        >>> figure_to_tensor(fig, dpi=20).shape  # 6 x 5.2 inches at 20 dpi
        torch.Size([3, 104, 120])
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
    """Render a figure to a ``(3, H, W)`` uint8 tensor (for loggers that take arrays).

    A figure without an Agg-compatible canvas is drawn on a new ``FigureCanvasAgg``.

    Args:
        fig: a ``matplotlib.figure.Figure``; its dpi is set to ``dpi`` (it stays so).
        dpi: dots per inch: ``H`` and ``W`` are the figure's size in inches times ``dpi``.

    Returns:
        The RGB pixels (alpha dropped), a contiguous ``torch.uint8`` tensor ``(3, H, W)``.

    Example:
        >>> from matplotlib.figure import Figure
        >>> from wgan_lip.plotting import figure_to_tensor
        >>> img = figure_to_tensor(Figure(figsize=(2, 1)), dpi=50)
        >>> img.shape, img.dtype, int(img.min())  # a blank white figure
        (torch.Size([3, 50, 100]), torch.uint8, 255)
    """
    fig.set_dpi(dpi)
    canvas = fig.canvas
    if not hasattr(canvas, "buffer_rgba"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = torch.from_numpy(np.asarray(canvas.buffer_rgba()).copy())
    return rgba[..., :3].permute(2, 0, 1).contiguous()

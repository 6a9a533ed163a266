"""Images of a WGAN run: sample grids, toy scatters over the critic's level sets.

:func:`log_image` writes a PNG under the run's log folder (so any logger, CSV included,
leaves the pictures on disk) and also hands the image to the loggers that take images
(Weights & Biases, TensorBoard).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from ..plotting import critic_figure, figure_to_tensor, save_atomic


def sample_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A ``(3, H, W)`` float grid in [0, 1] of up to ``nrow**2`` images."""
    return make_grid(images[: nrow * nrow].clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)


def toy_scatter(critic, real: torch.Tensor, fake: torch.Tensor, title: str) -> torch.Tensor:
    """Real (red) vs generated (blue) 2-D samples over the critic's level sets, ``(3, H, W)``."""
    fig = critic_figure(critic, real, fake, title=title, labels=("real", "generated"))
    return figure_to_tensor(fig).float() / 255.0


def log_image(trainer, key: str, image: torch.Tensor, step: int) -> Path | None:
    """Save ``image`` (``(3, H, W)`` in [0, 1]) as a PNG and send it to the image loggers."""
    if trainer is None or not trainer.is_global_zero:
        return None
    folder = Path(trainer.log_dir or trainer.default_root_dir) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
    path = save_atomic(lambda tmp: save_image(image, tmp, format="png"),
                       folder / f"{name}_{step:07d}.png")  # fmt: skip
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # WandbLogger (and loggers with the same API)
            logger.log_image(key=key, images=[image.permute(1, 2, 0).numpy()],
                             caption=[f"generator step {step}"])  # fmt: skip
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
            logger.experiment.add_image(key, image, global_step=step)
    return path

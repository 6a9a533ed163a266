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

from ..paths import save_atomic
from ..plotting import critic_figure, figure_to_tensor


def sample_grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A ``(3, H, W)`` float grid in [0, 1] of up to ``nrow**2`` images.

    Images are clamped to [0, 1] and laid out ``nrow`` per row with 2 white pixels of
    padding (torchvision's ``make_grid``); grayscale images are repeated over 3 channels.

    Args:
        images: a batch ``(n, C, H, W)``, ``C`` 1 or 3; only the first ``nrow**2`` are used.
        nrow: images per row of the grid.

    Returns:
        The grid, a float tensor ``(3, H', W')``.

    Example:
        >>> import torch
        >>> from wgan_lip.gan.images import sample_grid
        >>> grid = sample_grid(torch.rand(10, 1, 8, 8), nrow=2)  # 4 of the 10 images
        >>> grid.shape, float(grid.min()) >= 0, float(grid.max()) <= 1
        (torch.Size([3, 22, 22]), True, True)
    """
    return make_grid(images[: nrow * nrow].clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)


def toy_scatter(critic, real: torch.Tensor, fake: torch.Tensor, title: str) -> torch.Tensor:
    """Real (red) vs generated (blue) 2-D samples over the critic's level sets, ``(3, H, W)``.

    The figure of :func:`wgan_lip.plotting.critic_figure`, rendered at 80 dpi.

    Args:
        critic: a critic of 2-D points (see :func:`~wgan_lip.plotting.critic_figure`).
        real: real samples ``(n, 2)``.
        fake: generated samples ``(m, 2)``.
        title: the figure's title (empty: ``"critic level sets"``).

    Returns:
        The RGB image, a float tensor ``(3, 416, 480)`` in [0, 1].

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.gan.images import toy_scatter
        >>> img = toy_scatter(nn.Linear(2, 1), torch.randn(20, 2), torch.randn(20, 2), "step 0")
        >>> img.shape, img.dtype
        (torch.Size([3, 416, 480]), torch.float32)
    """
    fig = critic_figure(critic, real, fake, title=title, labels=("real", "generated"))
    return figure_to_tensor(fig).float() / 255.0


def log_image(trainer, key: str, image: torch.Tensor, step: int) -> Path | None:
    """Save ``image`` (``(3, H, W)`` in [0, 1]) as a PNG and send it to the image loggers.

    The PNG goes to ``<log_dir or default_root_dir>/images/<key>_<step>.png`` (characters
    other than letters, digits, ``_``, ``.`` and ``-`` in ``key`` become ``_``; the step has
    7 digits), written atomically. Loggers with a ``log_image`` method (Weights & Biases)
    get an ``(H, W, 3)`` array, loggers whose ``experiment`` has ``add_image``
    (TensorBoard) the tensor. Only the global-zero process writes.

    Args:
        trainer: the Lightning trainer (or ``None``: nothing is done).
        key: the image's name, e.g. ``"samples"``.
        image: the image, a CPU float tensor ``(3, H, W)`` in [0, 1].
        step: the generator step, in the file name and the loggers' records.

    Returns:
        The PNG's path, or ``None`` when nothing was written (no trainer, or not the
        global-zero process).

    Example:
        >>> import tempfile
        >>> from types import SimpleNamespace
        >>> import torch
        >>> from wgan_lip.gan.images import log_image
        >>> with tempfile.TemporaryDirectory() as d:
        ...     trainer = SimpleNamespace(is_global_zero=True, log_dir=d, default_root_dir=d,
        ...                               loggers=[])
        ...     path = log_image(trainer, "val/samples", torch.rand(3, 8, 8), step=120)
        ...     print(path.parent.name, path.name, path.is_file())
        images val_samples_0000120.png True
        >>> log_image(None, "samples", torch.rand(3, 8, 8), 0) is None
        True
    """
    if trainer is None or not trainer.is_global_zero:
        return None
    folder = Path(trainer.log_dir or trainer.default_root_dir) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
    path = save_atomic(
        lambda tmp: save_image(image, tmp, format="png"), folder / f"{name}_{step:07d}.png"
    )
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # WandbLogger (and loggers with the same API)
            logger.log_image(
                key=key, images=[image.permute(1, 2, 0).numpy()], caption=[f"generator step {step}"]
            )
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
            logger.experiment.add_image(key, image, global_step=step)
    return path

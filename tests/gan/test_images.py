"""Pictures of a run: PNG files for any logger, images handed to the loggers that take them."""

from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from wgan_lip.gan.critics import build_gan_critic
from wgan_lip.gan.images import log_image, sample_grid, toy_scatter


class ImageLogger:
    """Stands for WandbLogger: has ``log_image``."""

    def __init__(self):
        self.calls = []

    def log_image(self, key, images, caption):
        self.calls.append((key, images[0].shape, caption))


class BoardLogger:
    """Stands for TensorBoardLogger: its experiment has ``add_image``."""

    def __init__(self):
        self.calls = []
        self.experiment = SimpleNamespace(add_image=lambda *a, **k: self.calls.append((a, k)))


def test_grid_and_scatter_shapes():
    grid = sample_grid(torch.rand(100, 1, 8, 8))
    assert grid.shape == (3, 8 * 8 + 9 * 2, 8 * 8 + 9 * 2)  # 8x8 images, 2-pixel padding
    critic = build_gan_critic("hard", (2,), {"widths": [8, 8]})
    pic = toy_scatter(critic, torch.randn(50, 2), torch.randn(50, 2), "t")
    assert pic.shape[0] == 3 and 0 <= float(pic.min()) and float(pic.max()) <= 1


def test_log_image_writes_a_png_and_feeds_image_loggers(tmp_path):
    wandb_like, board_like = ImageLogger(), BoardLogger()
    trainer = SimpleNamespace(
        is_global_zero=True,
        log_dir=str(tmp_path),
        default_root_dir=None,
        loggers=[wandb_like, board_like, object()],
    )
    image = torch.rand(3, 20, 30)
    path = log_image(trainer, "samples", image, step=7)
    assert path == tmp_path / "images" / "samples_0000007.png"
    saved = np.asarray(Image.open(path))
    assert saved.shape == (20, 30, 3)
    assert np.abs(saved / 255.0 - image.permute(1, 2, 0).numpy()).max() < 1 / 255 + 1e-6
    assert wandb_like.calls == [("samples", (20, 30, 3), ["generator step 7"])]
    assert board_like.calls[0][1] == {"global_step": 7}
    assert not list(tmp_path.glob("images/*.tmp*"))  # written atomically


def test_only_rank_zero_writes(tmp_path):
    trainer = SimpleNamespace(is_global_zero=False, log_dir=str(tmp_path), loggers=[])
    assert log_image(trainer, "samples", torch.rand(3, 4, 4), step=1) is None
    assert not (tmp_path / "images").exists()

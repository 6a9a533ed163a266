"""Small WGAN runs shared by the gan tests (CPU, no logger, a few steps)."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from wgan_lip.gan import WGAN, ImageDataModule, ToyDataModule
from wgan_lip.gan.architecture import SECTIONS


def _wgan(constraint: str, args: dict, kw: dict) -> WGAN:
    """A WGAN of ``args`` updated by ``kw``; each section's fields (``n_critic``,
    ``ema_decay``, ``samples``, ``critic``...) go to their section."""
    merged = {**args, **kw}
    sections = {
        name: {f: merged.pop(f) for f in cls.__dataclass_fields__ if f in merged}
        for name, cls in SECTIONS.items()
    }
    return WGAN(constraint, **sections, **merged)


def toy_data(**kw) -> ToyDataModule:
    args = dict(name="25gaussians", n_train=512, n_val=300, batch_size=64)
    return ToyDataModule(**{**args, **kw})


def small_toy_wgan(constraint: str, **kw) -> WGAN:
    args = dict(
        data_shape=(2,),
        critic={"widths": [32, 32]},
        generator_widths=(32, 32),
        samples=300,
        check_finite_every=5,
    )
    return _wgan(constraint, args, kw)


def tiny_images(path, n: int = 256, side: int = 8, seed: int = 0) -> str:
    """Write ``n`` random ``(1, side, side)`` images in [0, 1] to ``path`` (.npy)."""
    g = np.random.default_rng(seed)
    x = g.random((n, 1, side, side), dtype=np.float32)
    x[: n // 2, :, : side // 2] *= 0.2  # two kinds of images, so features differ
    np.save(path, x)
    return str(path)


def image_data(path, **kw) -> ImageDataModule:
    return ImageDataModule(str(path), **{"batch_size": 32, "val_fraction": 0.25, **kw})


def small_image_wgan(constraint: str, **kw) -> WGAN:
    args = dict(
        data_shape=(1, 8, 8),
        latent_dim=8,
        generator_base_channels=8,
        samples=64,
        check_finite_every=5,
    )
    if "critic" not in kw:  # the sizes of the older flat test critics
        hard = constraint == "hard"
        args["critic"] = {"channels": [4, 8], "widths": [16]} if hard else {"channels": [8, 16, 32]}
    return _wgan(constraint, args, kw)


def trainer(max_steps: int, **kw) -> L.Trainer:
    args = dict(
        max_steps=max_steps,
        max_epochs=-1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    return L.Trainer(**{**args, **kw})


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]

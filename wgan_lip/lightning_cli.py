"""``wgan-lip fit|validate|test --config FILE``: LightningCLI over any wgan_lip module.

Configs name the module and datamodule by ``class_path`` (see ``configs/``), so one entry
point serves the W1 critic, the WGAN and the robust classifier.
"""

from __future__ import annotations

import os

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.cli import LightningCLI

from .checkpoints import verify_checkpoint_file
from .errors import InputError


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, with a one-line error for a missing, truncated or corrupt
    checkpoint (a run killed while writing one, a copy cut short) instead of a traceback
    from deep inside ``torch.load``. Saving is Lightning's: written whole, then moved."""

    def load_checkpoint(self, path, *args, **kwargs):
        if not os.path.isfile(path):
            raise InputError(f"checkpoint {str(path)!r} not found")
        verify_checkpoint_file(path)  # torch.load does not check the zip CRCs
        try:
            return super().load_checkpoint(path, *args, **kwargs)
        except Exception as e:
            lines = str(e).strip().splitlines() or [""]
            raise InputError(
                f"checkpoint {str(path)!r} is truncated or corrupt ({type(e).__name__}: "
                f"{lines[0][:200]}); delete it to resume from an earlier checkpoint, or start "
                "again without --ckpt_path"
            ) from None


class WganLipCLI(LightningCLI):
    """LightningCLI where the config is the source of truth.

    Stock LightningCLI silently replaces the model's config with the hyperparameters stored
    in a ``--ckpt_path`` file; here the config stands and the module checks that the
    checkpoint matches it (a mismatch is a clear error, not a different model).
    """

    def _parse_ckpt_path(self) -> None:
        return None

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        strategy = self.trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:  # keep a user's own plugin
            strategy.checkpoint_io = SafeCheckpointIO()


def main(argv: list[str]) -> int:
    """Run LightningCLI on ``argv`` (e.g. ``["fit", "--config", "configs/w1/x.yaml"]``)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv) and not os.path.isfile(argv[i + 1]):
            raise InputError(f"config file {argv[i + 1]!r} not found")
    os.environ.setdefault("WANDB_MODE", "offline")
    WganLipCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=argv,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
    return 0

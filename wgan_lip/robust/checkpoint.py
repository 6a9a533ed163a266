"""Load a trained :class:`LipschitzClassifier` from a Lightning checkpoint, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..checkpoints import verify_checkpoint_file
from ..errors import InputError
from .module import LipschitzClassifier


def load_classifier(path: str | os.PathLike) -> LipschitzClassifier:
    """The classifier in ``path`` (eval mode, CPU); ``InputError`` for anything unusable."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"checkpoint {str(path)!r} not found")
    verify_checkpoint_file(path)  # torch.load does not check the zip CRCs
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise InputError(f"cannot read checkpoint {str(path)!r} ({type(e).__name__})") from None
    hp = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    if "state_dict" not in ckpt or "architecture" not in hp or not hp.get("input_shape"):
        raise InputError(f"{str(path)!r} is not a LipschitzClassifier checkpoint")
    kwargs = {k: v for k, v in hp.items() if not k.startswith("_")}
    model = LipschitzClassifier(**kwargs)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise InputError(
            f"checkpoint {str(path)!r} does not match its own settings ({first})"
        ) from None
    return model.eval()

"""Load a trained :class:`LipschitzClassifier` from a Lightning checkpoint, with clear errors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ..checkpoints import verify_checkpoint_file
from ..errors import InputError
from .module import LipschitzClassifier, migrate_hparams


def load_classifier(path: str | os.PathLike) -> LipschitzClassifier:
    """The classifier in ``path`` (eval mode, CPU); ``InputError`` for anything unusable.

    The file's zip CRCs are checked first (:func:`~wgan_lip.checkpoints.verify_checkpoint_file`),
    then it is loaded with ``torch.load(..., weights_only=True)``: tensors and plain
    containers only, so a file cannot run pickled code. The model is rebuilt from the saved
    hyperparameters (keys starting with ``_`` are dropped; the flat options of older
    versions are moved into their sections by
    :func:`~wgan_lip.robust.module.migrate_hparams`, to the network they were trained as)
    and its state dict loaded.

    Args:
        path: a Lightning checkpoint of a :class:`~wgan_lip.robust.LipschitzClassifier`
            (``~`` is expanded): a dict with ``state_dict`` and ``hyper_parameters`` holding
            ``architecture`` and ``input_shape``.

    Returns:
        The :class:`~wgan_lip.robust.LipschitzClassifier`, in eval mode on the CPU.

    Raises:
        InputError: a missing, corrupt or unreadable file, one that is not a
            LipschitzClassifier checkpoint (or one holding pickled objects beyond tensors
            and plain containers), invalid saved hyperparameters, or weights that do not fit
            the saved architecture.

    Example:
        >>> import os, tempfile, torch
        >>> from wgan_lip.robust import LipschitzClassifier
        >>> from wgan_lip.robust.checkpoint import load_classifier
        >>> clf = LipschitzClassifier("fc3", input_shape=(1, 8, 8), num_classes=3,
        ...                           network={"widths": [32]})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "clf.ckpt")
        ...     torch.save({"state_dict": clf.state_dict(),
        ...                 "hyper_parameters": dict(clf.hparams)}, path)
        ...     model = load_classifier(path)
        >>> x = torch.rand(2, 1, 8, 8)
        >>> model.training, bool(torch.allclose(model.net(x), clf.eval().net(x)))
        (False, True)
        >>> load_classifier("missing.ckpt")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: checkpoint 'missing.ckpt' not found
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"checkpoint {str(path)!r} not found")
    verify_checkpoint_file(path)  # torch.load does not check the zip CRCs
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "unsupported global" not in str(e).lower():  # not a class: a corrupt pickle
            raise InputError(f"cannot read checkpoint {str(path)!r} (UnpicklingError)") from None
        raise InputError(
            f"checkpoint {str(path)!r} holds pickled objects beyond tensors and plain "
            "containers, which are not loaded (they could run code); save it with "
            "wgan-lip fit or LipschitzClassifier"
        ) from None
    except Exception as e:
        raise InputError(f"cannot read checkpoint {str(path)!r} ({type(e).__name__})") from None
    if not isinstance(ckpt, dict):  # a plain tensor or list saved with torch.save
        raise InputError(
            f"{str(path)!r} holds a {type(ckpt).__name__}, not a LipschitzClassifier "
            "checkpoint (a .ckpt of wgan-lip fit)"
        )
    hp = ckpt.get("hyper_parameters", {})
    if not isinstance(hp, dict):
        hp = {}
    if "state_dict" not in ckpt or "architecture" not in hp or not hp.get("input_shape"):
        raise InputError(f"{str(path)!r} is not a LipschitzClassifier checkpoint")
    kwargs = migrate_hparams({k: v for k, v in hp.items() if not k.startswith("_")})
    try:
        model = LipschitzClassifier(**kwargs)
    except InputError as e:
        raise InputError(f"checkpoint {str(path)!r} has invalid settings ({e})") from None
    except (TypeError, ValueError) as e:
        raise InputError(
            f"checkpoint {str(path)!r} has invalid settings ({type(e).__name__}: {e})"
        ) from None
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise InputError(
            f"checkpoint {str(path)!r} does not match its own settings ({first})"
        ) from None
    return model.eval()

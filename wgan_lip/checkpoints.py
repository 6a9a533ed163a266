"""Integrity of checkpoint files before anything is loaded from them."""

from __future__ import annotations

import os
import zipfile

from .errors import InputError


def verify_checkpoint_file(path: str | os.PathLike) -> None:
    """Refuse, in one line, a checkpoint whose zip entries fail their CRC-32 check.

    ``torch.save`` writes a zip archive that records a CRC per entry, but ``torch.load``
    does not check them: flipped bytes inside a tensor load silently as wrong weights (a
    certificate computed from them would be wrong). Files that are not zip archives (the
    legacy format) are left to the loader.

    Args:
        path: the checkpoint file (``str`` or path-like). It must exist: a missing file raises
            ``FileNotFoundError`` from ``open``.

    Raises:
        InputError: the file starts like a zip archive but has no central directory (cut
            short), cannot be read as a zip archive, or has an entry whose CRC-32 does not
            match its data.

    Example:
        >>> import os, tempfile, torch
        >>> from wgan_lip.checkpoints import verify_checkpoint_file
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "w.pt")
        ...     torch.save({"w": torch.zeros(3)}, path)
        ...     verify_checkpoint_file(path)  # intact: returns None
        ...     data = open(path, "rb").read()
        ...     with open(path, "wb") as f:
        ...         _ = f.write(data[: len(data) // 2])
        ...     try:
        ...         verify_checkpoint_file(path)
        ...     except ValueError as e:
        ...         print("truncated or corrupt" in str(e))
        True
    """
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":  # a zip archive that lost its end (directory)
                raise InputError(
                    f"checkpoint {path!r} is truncated or corrupt (a zip archive "
                    "without its central directory: the file was cut short); "
                    "delete it or use an earlier checkpoint"
                )
        return
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise InputError(
            f"checkpoint {path!r} is truncated or corrupt ({e}); delete it or "
            "use an earlier checkpoint"
        ) from None
    if bad is not None:
        raise InputError(
            f"checkpoint {path!r} is truncated or corrupt (entry {bad!r} fails "
            "its CRC check); delete it or use an earlier checkpoint"
        )


def peek_checkpoint(path: object, weights_only: bool | None = None) -> dict:
    """The checkpoint at ``path``, memory-mapped, or ``{}`` when it cannot be read here.

    The modules' loaders read a checkpoint's hyperparameters before Lightning does, to move
    the options of older layouts to their new places; a file that cannot be read is left to
    Lightning's loader, which reads it again and says what is wrong.

    Args:
        path: a file path (a file object gives ``{}``: it can be read only once).
        weights_only: as :func:`torch.load` (None: torch's default).

    Returns:
        The checkpoint's dict (tensors memory-mapped), or ``{}``.

    Example:
        >>> from wgan_lip.checkpoints import peek_checkpoint
        >>> peek_checkpoint("no-such-file.ckpt")
        {}
    """
    if hasattr(path, "read"):
        return {}
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=weights_only)
    except Exception:
        return {}
    return checkpoint if isinstance(checkpoint, dict) else {}

"""Output paths checked before any work: a run that cannot write its results is refused
before training starts, never after (a late failure would throw a finished result away)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from .errors import InputError


def nearest_existing(folder: str | os.PathLike) -> Path:
    """``folder`` itself if it exists, else its nearest existing ancestor.

    Args:
        folder: a folder that may not exist yet (relative to the working directory or not).

    Returns:
        The absolute path of the deepest existing folder on the way to ``folder``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.paths import nearest_existing
        >>> with tempfile.TemporaryDirectory() as d:
        ...     print(nearest_existing(Path(d) / "a" / "b") == Path(d).absolute())
        True
    """
    path = Path(folder).expanduser().absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_writable_folder(folder: str | os.PathLike, what: str) -> None:
    """Refuse, in one line, a folder in which this process cannot create files.

    The folder need not exist yet: its nearest existing ancestor must then be a folder in
    which files can be created (the run creates the rest). Writability is probed by creating
    and removing a temporary file, which is what counts (permission bits do not stop root; a
    read-only file system or ``/sys`` does).

    Args:
        folder: where files will be written.
        what: how the error names it (``"--plot"``, ``"trainer.default_root_dir"``).

    Raises:
        InputError: the folder (or its nearest existing ancestor) is a file, or no file can
            be created there.

    Example:
        >>> import tempfile
        >>> from wgan_lip.paths import check_writable_folder
        >>> with tempfile.TemporaryDirectory() as d:
        ...     check_writable_folder(d + "/runs/x", "--out")  # fine: it can be created
    """
    existing = nearest_existing(folder)
    shown = str(folder)
    if not existing.is_dir():
        raise InputError(
            f"{what}: cannot create folder {shown!r}: {str(existing)!r} is a file, not a folder"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".wgan-lip-probe-", dir=existing)
    except OSError as e:
        reason = e.strerror or errno.errorcode.get(e.errno or 0, type(e).__name__)
        where = "" if existing == Path(folder).expanduser().absolute() else f" (in {existing})"
        raise InputError(
            f"{what}: cannot write to {shown!r}{where}: {reason}; choose a writable folder"
        ) from None
    os.close(fd)
    os.unlink(probe)

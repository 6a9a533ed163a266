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


def save_atomic(write, path: str | os.PathLike) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it.

    A failure leaves no file behind, and readers never see a half-written one. The file gets
    the permissions a plain ``open(path, "w")`` would give (``0o666`` less the umask), not
    ``mkstemp``'s private ``0o600``.

    Args:
        write: a callable taking the temporary file's path (a ``str`` with ``path``'s suffix,
            so writers that pick a format from the suffix keep working) and writing to it;
            its return value is ignored, and what it raises propagates after the temporary
            file is removed.
        path: the destination (``str`` or path-like); its folder must exist. An existing
            file there is replaced.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Example:
        >>> import os, tempfile
        >>> from pathlib import Path
        >>> from wgan_lip.paths import save_atomic
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = save_atomic(lambda tmp: Path(tmp).write_text("ok"), os.path.join(d, "a.txt"))
        ...     print(out.name, out.read_text(), sorted(os.listdir(d)))
        a.txt ok ['a.txt']
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

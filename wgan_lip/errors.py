"""Errors for user mistakes: the CLI prints their one-line message and exits with code 2."""

from __future__ import annotations

import re


class InputError(ValueError):
    """A problem with what the user passed (file, dataset name, shapes, values, options).

    A ``ValueError``, so callers that catch ``ValueError`` keep working; the CLI catches it and
    prints only its message (no traceback).

    Example:
        >>> from wgan_lip.errors import InputError
        >>> try:
        ...     raise InputError("dim must be >= 1, got 0")
        ... except ValueError as e:
        ...     print(type(e).__name__, "-", e)
        InputError - dim must be >= 1, got 0
    """


class TooLargeError(InputError, MemoryError):
    """A computation that would need more memory than the configured limit.

    Both an :class:`InputError` (the CLI reports it in one line) and a ``MemoryError``.

    Example:
        >>> from wgan_lip.errors import InputError, TooLargeError
        >>> e = TooLargeError("the cost matrix would need 80 GB")
        >>> isinstance(e, InputError), isinstance(e, MemoryError), isinstance(e, ValueError)
        (True, True, True)
    """


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def short_reason(e: BaseException, limit: int = 120) -> str:
    """The first sentence of an exception's message, on one line and at most ``limit`` long.

    Library errors can run to paragraphs (torch's ``weights_only`` advice); a user needs
    the gist, inside a one-line error. ANSI colour codes are removed, and so is torch's
    general advice before ``WeightsUnpickler error:``.

    Args:
        e: the exception.
        limit: the longest result, in characters; longer lines are cut and end in ``...``.

    Returns:
        The first non-blank line of the message, up to its first ``". "``, without a final
        period; the exception's class name when the message is empty.

    Example:
        >>> from wgan_lip.errors import short_reason
        >>> short_reason(ValueError("bad header. Try again.\\nmore detail"))
        'bad header'
        >>> short_reason(KeyError())
        'KeyError'
        >>> short_reason(OSError("x" * 50), limit=10)
        'xxxxxxx...'
    """
    text = _ANSI.sub("", str(e))
    if "WeightsUnpickler error:" in text:  # torch: the reason follows its general advice
        text = text.split("WeightsUnpickler error:", 1)[1]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "") or type(e).__name__
    line = line.split(". ", 1)[0].rstrip(".")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."

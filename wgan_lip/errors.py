"""Errors for user mistakes: the CLI prints their one-line message and exits with code 2."""

from __future__ import annotations


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

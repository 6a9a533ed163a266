"""Errors for user mistakes: the CLI prints their one-line message and exits with code 2."""

from __future__ import annotations


class InputError(ValueError):
    """A problem with what the user passed (file, dataset name, shapes, values, options)."""


class TooLargeError(InputError, MemoryError):
    """A computation that would need more memory than the configured limit."""

"""Strict JSON: every JSON the project writes goes through here.

Python's ``json`` writes ``NaN``, ``Infinity`` and ``-Infinity`` by default, which strict
parsers (JavaScript's ``JSON.parse``, ``jq``, most other languages) refuse. Here a value that
is not a finite number (a p-value that does not apply, a member never evaluated) becomes
``null`` at any depth, numpy and torch scalars and arrays become plain Python numbers and
lists, and ``allow_nan=False`` guarantees that nothing non-finite slips through. Files are
written whole or not at all: to a temporary file in the same folder, then renamed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .paths import save_atomic


def strict(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None, recursively.

    Dicts (keys made strings, as JSON needs), lists, tuples and sets are walked; numpy and
    torch scalars, 0-d arrays and tensors become Python numbers (arrays and tensors become
    lists); dataclass-like objects with ``to_dict`` are converted with it. Anything else is
    returned as is (``json`` refuses what it cannot write).

    Args:
        obj: a JSON-like value.

    Returns:
        The same structure, safe for ``json.dumps(..., allow_nan=False)``.

    Example:
        >>> import numpy as np, torch
        >>> from wgan_lip.jsonio import strict
        >>> strict({"a": float("nan"), "b": [np.float32(1.5), torch.tensor(-float("inf"))]})
        {'a': None, 'b': [1.5, None]}
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {_key(k): strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [strict(v) for v in obj]
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return strict(obj.to_dict())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy / torch scalars and arrays
        return strict(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _key(k: Any) -> str | int | float | bool | None:
    """A dict key JSON can hold (numpy / torch scalar keys become Python scalars)."""
    if isinstance(k, (str, int, bool)) or k is None:
        return k
    if isinstance(k, float):
        return k if math.isfinite(k) else str(k)
    if hasattr(k, "item") and callable(k.item):
        return _key(k.item())
    return str(k)


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`strict` ``(obj)`` with ``allow_nan=False``.

    Args:
        obj: a JSON-like value (non-finite numbers become ``null``).
        **kwargs: passed to ``json.dumps`` (``indent``, ``sort_keys``...).

    Returns:
        Strict JSON text.

    Example:
        >>> from wgan_lip.jsonio import dumps_strict
        >>> dumps_strict({"value": float("-inf"), "n": 3})
        '{"value": null, "n": 3}'
    """
    kwargs["allow_nan"] = False
    return json.dumps(strict(obj), **kwargs)


def write_json_strict(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (and a final newline) to ``path``, whole or not at all.

    The text goes to a temporary file in the same folder, is flushed to disk, and is then
    renamed over ``path``: a full disk or a crash leaves ``path`` as it was and no
    temporary file behind.

    Args:
        path: the file to write.
        obj: a JSON-like value (non-finite numbers become ``null``).
        indent: ``json.dumps``'s indent.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the folder is missing or unwritable, or the disk is full (``path`` is then
            untouched).

    Example:
        >>> import json, os, tempfile
        >>> from wgan_lip.jsonio import write_json_strict
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = write_json_strict(os.path.join(d, "r.json"), {"p": float("nan")})
        ...     print(out.read_text().strip(), os.listdir(d))
        {
         "p": null
        } ['r.json']
    """
    text = dumps_strict(obj, indent=indent) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the rename makes it the file

    return save_atomic(write, path)


def print_json_strict(obj: Any, file: Any = None) -> None:
    """Print ``obj`` as one line of strict JSON, flushed.

    Flushed so that a failed write (a full disk, a closed pipe) raises here, not at
    interpreter exit.

    Args:
        obj: a JSON-like value (non-finite numbers become ``null``).
        file: the stream (default ``sys.stdout``).

    Raises:
        OSError: the stream could not take the text.

    Example:
        >>> from wgan_lip.jsonio import print_json_strict
        >>> print_json_strict({"x": float("nan")})
        {"x": null}
    """
    import sys

    stream = sys.stdout if file is None else file
    stream.write(dumps_strict(obj) + "\n")
    stream.flush()

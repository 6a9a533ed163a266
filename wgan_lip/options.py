"""One-line checks of option values: integers that are integers (not ``2.5``, not ``True``),
finite numbers in range, Lightning durations and devices.

Each check returns the value in a plain Python type (numpy integers become ``int``) or raises
:class:`~wgan_lip.errors.InputError` naming the option, what it needs and what it got.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from .errors import InputError

DURATION = re.compile(r"(\d+):(\d\d):(\d\d):(\d\d)")  # Lightning's max_time: DD:HH:MM:SS
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def _is_int(value: Any) -> bool:
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and (type(value).__name__ != "bool_")
    )


def check_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]``, or a one-line :class:`InputError`.

    Bools (``True`` is an ``int`` in Python) and floats, even whole ones, are refused.

    Args:
        name: the option's name, for the message.
        value: what was passed.
        low: the smallest value allowed.
        high: the largest value allowed (None: no limit).

    Returns:
        ``int(value)``.

    Raises:
        InputError: not an integer, or out of range.

    Example:
        >>> import numpy as np
        >>> from wgan_lip.options import check_int
        >>> check_int("steps", np.int64(5))
        5
        >>> check_int("steps", 2.5)
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: steps must be a positive integer, got 2.5
    """
    if low == 1 and high is None:
        kind, span = "a positive integer", "positive"
    else:
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        kind = f"an integer {span}"
    if not _is_int(value):
        raise InputError(f"{name} must be {kind}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise InputError(f"{name} must be {span}, got {value}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy's too), or a one-line :class:`InputError`.

    Args:
        name: the option's name, for the message.
        value: what was passed.

    Returns:
        ``bool(value)``.

    Raises:
        InputError: anything else (``1``, ``"yes"``, ``None``).

    Example:
        >>> from wgan_lip.options import check_bool
        >>> check_bool("race", False)
        False
        >>> check_bool("race", "no")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: race must be True or False, got 'no'
    """
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_optional_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int | None:
    """None, or :func:`check_int` of ``value``.

    Args:
        name: the option's name.
        value: what was passed.
        low: the smallest value allowed.
        high: the largest value allowed (None: no limit).

    Returns:
        None or ``int(value)``.

    Example:
        >>> from wgan_lip.options import check_optional_int
        >>> check_optional_int("batch_size", None), check_optional_int("batch_size", 64)
        (None, 64)
    """
    return None if value is None else check_int(name, value, low, high)


def check_real(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` between ``low`` and ``high``, or an InputError.

    NaN, infinities, bools and strings are refused.

    Args:
        name: the option's name.
        value: what was passed.
        low: the lower end.
        high: the upper end.
        low_open: exclude ``low`` itself.
        high_open: exclude ``high`` itself.

    Returns:
        ``float(value)``.

    Raises:
        InputError: not a real number, not finite, or out of range.

    Example:
        >>> from wgan_lip.options import check_real
        >>> check_real("holdout", 0.2, 0.0, 1.0, high_open=True)
        0.2
        >>> check_real("lr", float("nan"), 0.0, float("inf"), low_open=True, high_open=True)
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: lr must be a finite number in (0, inf), got nan
    """
    span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    what = f"{name} must be a finite number in {span}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(what)
    v = float(value)
    if not math.isfinite(v):
        raise InputError(what)
    if v < low or v > high or (low_open and v == low) or (high_open and v == high):
        raise InputError(what)
    return v


def check_widths(name: str, value: Any) -> tuple[int, ...] | None:
    """None, or a non-empty sequence of positive integers as a tuple.

    Args:
        name: the option's name.
        value: what was passed.

    Returns:
        None or the widths as a tuple of ``int``.

    Raises:
        InputError: not a sequence, empty, or an entry that is not a positive integer.

    Example:
        >>> from wgan_lip.options import check_widths
        >>> check_widths("widths", [64, 64])
        (64, 64)
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise InputError(f"{name} must be a non-empty list of positive integers, got {value!r}")
    return tuple(check_int(f"{name} entries", w) for w in value)


def check_names(name: str, value: Any, example: str) -> tuple[str, ...] | None:
    """None, or a non-empty sequence of strings.

    A lone string is refused: it would be read as its characters.

    Args:
        name: the option's name.
        value: what was passed.
        example: an example for the message (``"('linear', 'peaks')"``).

    Returns:
        None or the names as a tuple.

    Raises:
        InputError: a lone string, an empty sequence, or an entry that is not a string.

    Example:
        >>> from wgan_lip.options import check_names
        >>> check_names("family", ["linear", "peaks"], "('linear',)")
        ('linear', 'peaks')
    """
    if value is None:
        return None
    ok = isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) > 0
    if not ok or not all(isinstance(v, str) for v in value):
        raise InputError(
            f"{name} must be a non-empty list of names such as {example}, got {value!r}"
        )
    return tuple(value)


def check_duration(name: str, value: Any) -> str | dt.timedelta | dict | None:
    """A positive duration as Lightning's ``max_time`` takes it, or None.

    That is a ``"DD:HH:MM:SS"`` string, a ``timedelta`` or a dict of ``timedelta`` arguments.

    Args:
        name: the option's name.
        value: what was passed.

    Returns:
        ``value`` (a string stripped of surrounding spaces).

    Raises:
        InputError: anything else, or a duration of zero or less.

    Example:
        >>> from wgan_lip.options import check_duration
        >>> check_duration("max_time", "00:00:05:00")
        '00:00:05:00'
        >>> check_duration("max_time", "garbage")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: max_time must be a duration "DD:HH:MM:SS" (e.g. "00:01:30:00"),
        a timedelta or a dict of timedelta arguments, got 'garbage'
    """
    if value is None:
        return None
    what = (
        f'{name} must be a duration "DD:HH:MM:SS" (e.g. "00:01:30:00"), a timedelta or a '
        f"dict of timedelta arguments, got {value!r}"
    )
    if isinstance(value, str):
        m = DURATION.fullmatch(value.strip())
        if m is None:
            raise InputError(what)
        d, h, mi, s = (int(g) for g in m.groups())
        seconds, value = ((d * 24 + h) * 60 + mi) * 60 + s, value.strip()
    elif isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, dict):
        try:
            seconds = dt.timedelta(**value).total_seconds()
        except (TypeError, ValueError, OverflowError):
            raise InputError(what) from None
    else:
        raise InputError(what)
    if not seconds > 0:
        raise InputError(f"{name} must be a positive duration, got {value!r}")
    return value


def check_accelerator(name: str, value: Any) -> Any:
    """A known accelerator name, present when asked for, or a Lightning ``Accelerator``.

    Names are ``auto``, ``cpu``, ``gpu``/``cuda``, ``mps``, ``tpu``; ``gpu`` without CUDA is
    refused; an ``Accelerator`` object is returned as is.

    Args:
        name: the option's name.
        value: what was passed.

    Returns:
        ``value``.

    Raises:
        InputError: an unknown name, or a GPU asked for where there is none.

    Example:
        >>> from wgan_lip.options import check_accelerator
        >>> check_accelerator("accelerator", "cpu")
        'cpu'
    """
    if not isinstance(value, str):
        from lightning.pytorch.accelerators import Accelerator

        if isinstance(value, Accelerator):
            return value
        raise InputError(f"{name} must be one of {', '.join(ACCELERATORS)}, got {value!r}")
    if value not in ACCELERATORS:
        raise InputError(f"{name} must be one of {', '.join(ACCELERATORS)}, got {value!r}")
    if value in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError(
                f"{name}={value!r}, but no CUDA GPU is available here; use 'auto' or 'cpu'"
            )
    return value


def check_devices(name: str, value: Any) -> Any:
    """``devices`` as Lightning takes it, or a one-line InputError.

    That is ``"auto"``, a positive integer or ``-1`` (all), a string of one, or a non-empty
    list of device indices.

    Args:
        name: the option's name.
        value: what was passed.

    Returns:
        ``value`` (numpy integers as ``int``).

    Raises:
        InputError: anything else (bools, 0, floats, empty lists...).

    Example:
        >>> from wgan_lip.options import check_devices
        >>> [check_devices("devices", d) for d in (2, "auto", [0])]
        [2, 'auto', [0]]
    """
    what = (
        f'{name} must be "auto", a positive number of devices (or -1: all), or a list of '
        f"device indices, got {value!r}"
    )
    if value == "auto" and isinstance(value, str):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-1|[1-9]\d*|\d+(,\s*\d+)*,?", text):
            return value
        raise InputError(what)
    if _is_int(value):
        if value == -1 or value >= 1:
            return int(value)
        raise InputError(what)
    if isinstance(value, (list, tuple)) and value and all(_is_int(v) and v >= 0 for v in value):
        return [int(v) for v in value]
    raise InputError(what)


def dataclass_of(
    cls: type, value: object, what: str, moved: Callable[[str], str | None] | None = None
) -> Any:
    """``value`` as the dataclass ``cls``: a YAML section, a checkpoint's dict or a spec.

    The one reading of every grouped option (a network spec, the WGAN's and the
    classifier's sections): ``None`` gives the defaults, an instance itself, a mapping its
    fields; anything else, an unknown key or a key that moved is a one-line error.

    Args:
        cls: the dataclass.
        value: None, an instance of ``cls`` or a mapping of its fields.
        what: the option's name in messages (``"network"``, ``"sampling"``...).
        moved: ``moved(key)`` returns the message for a key that moved elsewhere, or None.

    Returns:
        The instance.

    Raises:
        InputError: not a mapping, a moved key or an unknown key (naming the known ones).

    Example:
        >>> from dataclasses import dataclass
        >>> from wgan_lip.options import dataclass_of
        >>> @dataclass(frozen=True)
        ... class Radii:
        ...     l2: tuple = (0.5,)
        >>> dataclass_of(Radii, {"l2": (1.0,)}, "radii").l2
        (1.0,)
        >>> dataclass_of(Radii, {"linf": (0.1,)}, "radii")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: radii: unknown key(s) linf; the keys are l2
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    names = [f.name for f in fields(cls)]
    if not isinstance(value, Mapping):
        raise InputError(
            f"{what} must be a mapping of {', '.join(names)}; got {type(value).__name__}"
        )
    for key in value if moved is not None else ():
        message = moved(key)
        if message:
            raise InputError(message)
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise InputError(
            f"{what}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(names)}"
        )
    return cls(**value)

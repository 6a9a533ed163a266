"""Bounds on options, shared by the command line and the Python API (no heavy imports).

A value beyond these is refused in one line: the seed range numpy and Lightning accept, and
attack budgets that would otherwise run for days (``--restarts 99999999999999999999``).
"""

from __future__ import annotations

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed range is [0, 2**32 - 1]
MAX_ATTACK_STEPS = 10_000  # PGD steps per restart
MAX_RESTARTS = 1_000  # PGD random restarts

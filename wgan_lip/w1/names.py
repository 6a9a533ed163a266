"""The names of the W1 critics, importable without torch (the CLI's ``--help`` lists them).

A single critic is a constraint of :mod:`wgan_lip.constraints` on an architecture:
``groupsort`` and ``bcop`` are the ``hard`` constraint as an MLP and as a convnet; the
baselines ``gp``, ``lp``, ``sn``, ``clip`` are MLPs. ``family`` trains several certified
critics together (:mod:`wgan_lip.w1.family`).
"""

from typing import Literal

from ..constraints import CONSTRAINTS

# critic name -> (constraint, architecture)
SINGLE_CRITICS: dict[str, tuple[str, str]] = {
    "groupsort": ("hard", "mlp"),
    "bcop": ("hard", "conv"),
    **{name: (name, "mlp") for name in CONSTRAINTS if name != "hard"},
}
CRITICS = ("family", *SINGLE_CRITICS)
CriticName = Literal[CRITICS]  # a type: LightningCLI lists and validates the names
CERTIFIED = frozenset(
    {"family", *(k for k, (c, _) in SINGLE_CRITICS.items() if CONSTRAINTS[c].certified)}
)

"""W1 estimation with a 1-Lipschitz critic: KR loss, critics, the Lightning module and
datamodule, and :func:`estimate_w1`.

Names are imported on first use (``from wgan_lip.w1 import estimate_w1`` works as usual), so
that importing a light submodule such as :mod:`wgan_lip.w1.names` does not load Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .names import CRITICS

_LAZY = {
    "PlateauSchedule": "callbacks",
    "RaceMembers": "callbacks",
    "StepProgress": "callbacks",
    "RawInputCritic": "critics",
    "build_critic": "critics",
    "KnownW1DataModule": "data",
    "TwoSampleDataModule": "data",
    "split_indices": "data",
    "W1Estimate": "estimate",
    "dual_stats": "estimate",
    "estimate_w1": "estimate",
    "DualStats": "loss",
    "global_kr_dual": "loss",
    "kr_dual": "loss",
    "kr_loss": "loss",
    "W1Critic": "module",
}

if TYPE_CHECKING:
    from .callbacks import PlateauSchedule, RaceMembers, StepProgress
    from .critics import RawInputCritic, build_critic
    from .data import KnownW1DataModule, TwoSampleDataModule, split_indices
    from .estimate import W1Estimate, dual_stats, estimate_w1
    from .loss import DualStats, global_kr_dual, kr_dual, kr_loss
    from .module import W1Critic


__getattr__, __dir__ = lazy_attributes(globals(), {k: "." + v for k, v in _LAZY.items()})


__all__ = [
    "CRITICS",
    "DualStats",
    "KnownW1DataModule",
    "PlateauSchedule",
    "RaceMembers",
    "RawInputCritic",
    "StepProgress",
    "TwoSampleDataModule",
    "W1Critic",
    "W1Estimate",
    "build_critic",
    "dual_stats",
    "estimate_w1",
    "global_kr_dual",
    "kr_dual",
    "kr_loss",
    "split_indices",
]

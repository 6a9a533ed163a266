"""W1 estimation with a 1-Lipschitz critic: KR loss, critics, the Lightning module and
datamodule, and :func:`estimate_w1`."""

from .callbacks import PlateauSchedule, StepProgress
from .critics import CRITICS, RawInputCritic, build_critic
from .data import KnownW1DataModule, TwoSampleDataModule, split_indices
from .estimate import W1Estimate, dual_stats, estimate_w1
from .loss import DualStats, kr_dual, kr_loss
from .module import W1Critic

__all__ = [
    "CRITICS",
    "DualStats",
    "KnownW1DataModule",
    "PlateauSchedule",
    "RawInputCritic",
    "StepProgress",
    "TwoSampleDataModule",
    "W1Critic",
    "W1Estimate",
    "build_critic",
    "dual_stats",
    "estimate_w1",
    "kr_dual",
    "kr_loss",
    "split_indices",
]

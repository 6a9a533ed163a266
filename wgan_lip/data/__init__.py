"""Data sources: synthetic problems with known W1 and the classic 2-D toys."""

from .synthetic import (
    GaussianScale,
    KnownW1,
    PointVsSphere,
    Translation,
    VoronoiPush,
    eight_gaussians,
    swiss_roll,
    twenty_five_gaussians,
    two_moons,
)

__all__ = [
    "GaussianScale",
    "KnownW1",
    "PointVsSphere",
    "Translation",
    "VoronoiPush",
    "eight_gaussians",
    "swiss_roll",
    "twenty_five_gaussians",
    "two_moons",
]

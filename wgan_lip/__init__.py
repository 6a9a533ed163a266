"""wgan_lip: 1-Lipschitz networks by construction, certified W1 estimates, WGAN critics.

The top-level names are imported on first use, so that ``wgan-lip --help`` and
``import wgan_lip`` do not pay for torch, Lightning and POT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes

__version__ = "0.2.0.dev0"

_LAZY = {
    "exact_w1": "wgan_lip.ot",
    "sliced_w1": "wgan_lip.ot",
    "W1Estimate": "wgan_lip.w1.estimate",
    "estimate_w1": "wgan_lip.w1.estimate",
}

if TYPE_CHECKING:
    from .ot import exact_w1, sliced_w1
    from .w1.estimate import W1Estimate, estimate_w1


__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)


__all__ = ["W1Estimate", "__version__", "estimate_w1", "exact_w1", "sliced_w1"]

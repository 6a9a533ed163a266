"""wgan_lip: 1-Lipschitz networks by construction, certified W1 estimates, WGAN critics."""

__version__ = "0.1.0"

from .ot import exact_w1, sliced_w1
from .w1 import W1Estimate, estimate_w1

__all__ = ["W1Estimate", "__version__", "estimate_w1", "exact_w1", "sliced_w1"]

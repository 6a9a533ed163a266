"""wgan_lip: 1-Lipschitz, gradient-norm-preserving networks for certified W1 estimation."""

__version__ = "0.1.0"

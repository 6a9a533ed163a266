"""wgan_lip: 1-Lipschitz, gradient-norm-preserving networks for certified Wasserstein-1 estimation."""

__version__ = "0.1.0"

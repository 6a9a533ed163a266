"""Certified 1-Lipschitz building blocks, pure torch (no Lightning import here).

Layers are drop-in ``torch.nn`` modules whose constraint is a ``torch.nn.utils.parametrize``
parametrization: ``layer.weight`` is the constrained weight and state dicts hold plain tensors.
"""

from .activations import FullSort, GroupSort, MaxMin
from .aol import AOLConv2d, AOLLinear
from .cayley import CayleyConv2d, FourierConv2d
from .conv import BCOPConv2d, InvertibleDownsample, L2NormPool2d, compose_kernels
from .export import export_plain
from .lipschitz import (
    NonFiniteWeightsError,
    conv_grid_bound,
    conv_transfer_bound,
    empirical_lipschitz,
    known_input_sizes,
    lipschitz_bound,
    register_lipschitz_bound,
)
from .orthogonal import BjorckConfig, BjorckLinear, Orthonormal, bjorck
from .sll import SLLConv2d, SLLLinear
from .spectral import SpectralConv2d, SpectralLinear
from .stacked import StackedLinear

__all__ = [
    "AOLConv2d",
    "AOLLinear",
    "BCOPConv2d",
    "BjorckConfig",
    "BjorckLinear",
    "CayleyConv2d",
    "FourierConv2d",
    "FullSort",
    "GroupSort",
    "InvertibleDownsample",
    "L2NormPool2d",
    "MaxMin",
    "NonFiniteWeightsError",
    "Orthonormal",
    "SLLConv2d",
    "SLLLinear",
    "SpectralConv2d",
    "SpectralLinear",
    "StackedLinear",
    "bjorck",
    "compose_kernels",
    "conv_grid_bound",
    "conv_transfer_bound",
    "empirical_lipschitz",
    "export_plain",
    "known_input_sizes",
    "lipschitz_bound",
    "register_lipschitz_bound",
]

"""The dense layers' shared shell: an ``nn.Linear`` whose ``weight`` is a parametrization."""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_float_input


class ConstrainedLinear(nn.Linear):
    """:class:`torch.nn.Linear` with a constrained ``weight`` (a parametrization set by the
    subclass): checks its input, bounds itself by the exact spectral norm of the weight it
    uses and exports to a plain ``nn.Linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, min_dim=1)
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: expected {self.in_features} input features in the "
                f"last dim, got shape {tuple(x.shape)}"
            )
        return super().forward(x)

    def lipschitz_bound(self) -> float:
        """The exact spectral norm (float64) of the constrained weight, never the
        constraint's promise, plus the rounding of ``x W^T + b`` in the layer's dtype."""
        from .lipschitz import _linear

        return _linear(self)

    def export_plain(self) -> nn.Linear:
        """A plain :class:`torch.nn.Linear` with this layer's constrained weight and bias."""
        from .export import plain_linear

        return plain_linear(self)

"""A learned Gaussian window per head: an example of an encoding defined outside hf_posenc.

Each head h adds -(i - j)^2 / (2 sigma_h^2) to its attention logits: keys far from the query fade out, sigma_h (a
width in tokens, learned, starting at `gaussian_window_init_width`) sets how far each head looks. The bias depends on
(i - j)^2 only, so it is symmetric by construction.

This file is what a model of the encoding carries to the Hub: it may use torch, transformers, the standard library
and hf_posenc's Hub-code files (the registration function, the route's base class), which the saved copy imports as
flat sibling files. `examples/custom_encoding.py` trains, measures, saves and reloads it.
"""

import math

import torch
from torch import nn
from transformers import initialization as init

from hf_posenc import register_encoding
from hf_posenc.positional_base import signed_distance
from hf_posenc.positional_bias import BiasEncoding


@register_encoding("gaussian_window", parameters={"gaussian_window_init_width": 4.0})
class GaussianWindowBias(BiasEncoding):
    """A learned per-head Gaussian window -(i - j)^2 / (2 sigma_h^2) on the logits. Route: bias. Parameters:
    `gaussian_window_init_width` (sigma at initialisation, in tokens; the widths are learned in log space).
    Symmetric by construction."""

    paper = "Example of hf_posenc's register_encoding (a learned Gaussian attention window)"
    symmetric = True
    extrapolates = True

    def __init__(self, config):
        super().__init__(config)
        if not config.gaussian_window_init_width > 0:
            raise ValueError(
                f"gaussian_window_init_width must be > 0 tokens; got {config.gaussian_window_init_width!r}."
            )
        self.init_width = float(config.gaussian_window_init_width)
        self.log_width = nn.Parameter(torch.empty(self.num_heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.constant_(self.log_width, math.log(self.init_width))

    def widths(self) -> torch.Tensor:
        """sigma_h of each head, in tokens."""
        return self.log_width.exp()

    def bias(self, seq_len: int, device) -> torch.Tensor:
        squared_distance = signed_distance(seq_len, device).float().square()
        variance = self.widths().float().square()[:, None, None]
        return -squared_distance[None] / (2 * variance)

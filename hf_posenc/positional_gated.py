"""A content-dependent bias: the Forgetting Transformer's forget gate made two-sided. Its bias depends on what the
tokens between query and key are, so it is computed per layer from that layer's attention input: the encoding
declares `reads_hidden_states` and the encoder asks it for `bias_from_hidden_states` instead of a bias built once.

Hub code: copied next to every saved model (positional.py imports it), so it imports only torch and transformers.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from .positional_bias import BiasEncoding


class ForgettingGateBias(BiasEncoding):
    """The Forgetting Transformer's data-dependent decay (Lin et al. 2025, FoX), two-sided as x-transformers'
    `DataDependentAlibi(causal=False)`. Each layer l gives every token t and head h a forget gate
    f_t = sigmoid(w_lh . x_t + b_lh), x_t being the layer's attention input, and adds to the logit of query i and key j
    the log of the gates between them:
        D_ij = sum over t in (j, i] of log f_t       for a key on the left (j <= i): FoX's own bias;
        D_ij = sum over t in (i, j] of log g_t       for a key on the right (j > i),
    computed as differences of cumulative sums of log f (memory O(B H T) for the gates, plus the [B, H, T, T] bias).
    `forgetting_tied_gates=True` (default) uses one gate for both sides (g = f): D is then a symmetric matrix
    (D_ij = D_ji), a key d tokens to the left weighs what one d tokens to the right does when the content is the same
    everywhere, and the encoding is the content-dependent counterpart of symmetric ALiBi; `False` learns a separate
    right gate g (its own w and b), which can make one side forget faster. Padded tokens get gate 1 (log 0), so they
    never change what real tokens see. Parameters per layer: w [sides, H, D] ~ N(0, initializer_range) and
    b [sides, H] = `forgetting_gate_bias_init` (5, as x-transformers: sigmoid(5) = 0.993, a slow start of the decay).
    Route: bias, reading the hidden states. Symmetric by construction with tied gates."""

    name = "forgetting"
    paper = "Lin, Nikishin, He, Courville 2025, Forgetting Transformer: softmax attention with a forget gate (FoX)"
    reads_hidden_states = True

    def __init__(self, config):
        super().__init__(config)
        self.tied = config.forgetting_tied_gates
        self.symmetric = self.tied
        self.bias_init = config.forgetting_gate_bias_init
        self.initializer_range = config.initializer_range
        sides = 1 if self.tied else 2
        self.gate_weight = nn.Parameter(
            torch.empty(config.num_hidden_layers, sides, self.num_heads, config.hidden_size)
        )
        self.gate_bias = nn.Parameter(torch.empty(config.num_hidden_layers, sides, self.num_heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.gate_weight, std=self.initializer_range)
        init.constant_(self.gate_bias, self.bias_init)

    def bias(self, seq_len: int, device) -> torch.Tensor:
        raise ValueError(
            f"The '{self.name}' encoding's bias is computed from the tokens between query and key (a forget gate per "
            "token): there is no attention from position alone. Measure it on text with "
            "summarize(model(..., output_attentions=True).attentions) instead."
        )

    def log_gates(self, hidden_states: torch.Tensor, layer_index: int) -> torch.Tensor:
        """[B, sides, H, T] log f (and log g), in float32."""
        logits = torch.einsum("btd,shd->bsht", hidden_states.float(), self.gate_weight[layer_index].float())
        return F.logsigmoid(logits + self.gate_bias[layer_index].float()[None, :, :, None])

    def bias_from_hidden_states(
        self, hidden_states: torch.Tensor, layer_index: int, real: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The float32 [B, H, T, T] bias of layer `layer_index` from its attention input `hidden_states` [B, T, D];
        `real` ([B, T] booleans, None: all real) gives padded tokens gate 1."""
        log_gates = self.log_gates(hidden_states, layer_index)
        if real is not None:
            log_gates = log_gates.masked_fill(~real[:, None, None, :], 0.0)
        cumulative = log_gates.cumsum(-1)  # C_t = sum of log gates up to t
        left, right = cumulative[:, 0], cumulative[:, -1]  # the same tensor when the gates are tied
        seq_len = hidden_states.shape[1]
        positions = torch.arange(seq_len, device=hidden_states.device)
        key_is_left = positions[None, :] <= positions[:, None]
        left_bias = left[..., :, None] - left[..., None, :]  # C_i - C_j: the gates in (j, i]
        right_bias = right[..., None, :] - right[..., :, None]  # C_j - C_i: the gates in (i, j]
        return torch.where(key_is_left, left_bias, right_bias)

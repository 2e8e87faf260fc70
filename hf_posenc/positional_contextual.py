"""Contextual position (CoPE): positions counted in content-chosen units, made two-sided for an encoder. A score-route
encoding: each layer's query-key gates decide how much every token counts, so the position of a key depends on the
tokens between it and the query.

Hub code: copied next to every saved model (positional.py imports it), so it imports only torch and transformers.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from .positional_base import ScoreEncoding


class ContextualPositionScores(ScoreEncoding):
    """Contextual Position Encoding (Golovneva, Wang, Weston, Sukhbaatar 2024), made bidirectional. Per layer and head,
    with the scaled logits s_it = q_i.k_t / sqrt(d) of that layer:
        g_it = sigmoid(s_it)                                     how much token t counts, seen from query i;
        p_ij = sum over t = j..i of g_it    for a key on the left (j <= i): the paper's causal CoPE;
        p_ij = sum over t = i..j of g_it    for a key on the right (j > i),
    clamped to P - 1 (P = `cope_max_positions`), and the logit gains
        (1 - f) q_i.e[floor p_ij] + f q_i.e[ceil p_ij],   f = p_ij - floor p_ij,
    with e the left table for keys on the left and the right table for keys on the right (`cope_shared_table=False`,
    asymmetric) or one table for both (`True`: a symmetric counting rule, so the score matrix of a reversed sequence
    is the reversed score matrix). As in the paper's code: the gates read the scaled logits, q_i.e is added after the
    1/sqrt(d) scaling (so `scores` returns it times sqrt(d), which the attention divides back), the tables are
    [P, d] per layer, shared by the heads, initialised at zero. Computed as z_i[k] = q_i.e[k] for every integer k, then
    gathered at floor and ceil: O(B H T P d) products, and a few [B, H, T, T] float32 tensors per layer.
    Route: score. Parameters: `cope_max_positions`, `cope_shared_table`. Symmetric by construction with a shared
    table."""

    name = "cope"
    paper = "Golovneva, Wang, Weston, Sukhbaatar 2024, Contextual Position Encoding: learning to count what's important"

    def __init__(self, config):
        super().__init__(config)
        self.max_positions = config.cope_max_positions
        self.shared_table = config.cope_shared_table
        self.symmetric = self.shared_table
        sides = 1 if self.shared_table else 2
        self.position_embeddings = nn.Parameter(
            torch.empty(config.num_hidden_layers, sides, self.max_positions, self.head_dim)
        )
        # The attention multiplies q.k + scores by 1/sqrt(scale_divisor * d); the paper adds q.e unscaled.
        self.unscaled = math.sqrt(self.scale_divisor * self.head_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.zeros_(self.position_embeddings)

    def layer_context(self, seq_len: int, device, dtype) -> torch.Tensor:
        """[T, T] booleans: the key is on the query's left or is the query itself (j <= i)."""
        positions = torch.arange(seq_len, device=device)
        return positions[None, :] <= positions[:, None]

    def table_rows(self, seq_len: int) -> set[int]:
        """Rows a sequence of `seq_len` tokens can read (a count never exceeds the tokens it spans), per side."""
        reachable = range(min(seq_len, self.max_positions - 1) + 1)
        sides = 1 if self.shared_table else 2
        return {side * self.max_positions + row for side in range(sides) for row in reachable}

    def contextual_positions(self, query: torch.Tensor, key: torch.Tensor, key_is_left: torch.Tensor) -> torch.Tensor:
        """The [B, H, T, T] counts p_ij (float32 at least), clamped to `cope_max_positions - 1`. A count sums the
        gates of the tokens between query and key only; the model pads on the right and keeps each packed document
        contiguous, so for a real query and a real key of the same document these tokens are all real and of that
        document. Pairs that span padding or a document boundary get counts too, but the attention mask hides them."""
        # A count sums up to T gates: never in half precision.
        counting_dtype = torch.promote_types(query.dtype, torch.float32)
        query, key = query.to(counting_dtype), key.to(counting_dtype)
        scaled_logits = (query @ key.transpose(-1, -2)) / math.sqrt(self.head_dim)
        gates = torch.sigmoid(scaled_logits)
        # Left: zero the gates right of the query (the paper's causal mask), then sum from each key up to the query.
        left = gates.masked_fill(~key_is_left, 0.0).flip(-1).cumsum(-1).flip(-1)
        # Right: zero the gates left of the query, then sum from the query up to each key.
        right = gates.masked_fill(~key_is_left.T, 0.0).cumsum(-1)
        positions = torch.where(key_is_left, left, right)
        # The paper's clamp to P - 1 as one comparison, which autograd keeps as booleans (a clamp keeps the float
        # counts) and which also sends a NaN count (a query that overflowed) to a valid row instead of a bad index.
        limit = self.max_positions - 1
        return torch.where(positions < limit, positions, limit)

    def scores(self, query: torch.Tensor, key: torch.Tensor, layer_index: int, context) -> torch.Tensor:
        key_is_left = context
        positions = self.contextual_positions(query, key, key_is_left)
        lower = positions.floor()
        upper_weight = (positions - lower).to(query.dtype)  # differentiable in the gates; the floor is not
        lower = lower.long()
        if not self.shared_table:  # the right table's rows follow the left table's in `by_row`
            lower = lower + torch.where(key_is_left, 0, self.max_positions)
        table = self.position_embeddings[layer_index].flatten(0, 1).to(query.dtype)  # [sides * P, d]
        by_row = query @ table.T  # [B, H, T, sides * P]: q_i.e[k] for every row k
        # (1 - f) z[floor p] + f z[ceil p] written as z[floor p] + f (z[floor p + 1] - z[floor p]): one index tensor
        # and two [B, H, T, T] factors kept for the backward pass instead of two and four. The same value: ceil p is
        # floor p + 1 unless f = 0. The step after a table's last row (P - 1) is read only by clamped counts, f = 0.
        step_to_next = F.pad(by_row[..., 1:] - by_row[..., :-1], (0, 1))
        interpolated = by_row.gather(-1, lower) + upper_weight * step_to_next.gather(-1, lower)
        return interpolated * self.unscaled

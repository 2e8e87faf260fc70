"""The base of every positional encoding and the position helpers the routes share.

Hub code: copied next to every saved model (positional.py imports it), so it imports only torch and transformers.
"""

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """Base class. Subclasses set the class attributes below and implement their route's method:
    `embeddings(seq_len, device, dtype)`, `bias(seq_len, device)`, `rotate(query, key, context)` or
    `scores(query, key, layer_index, context)`. Everything that depends on positions only is computed once per
    forward: the embeddings, the bias, and the `context` that `layer_context` gives every layer."""

    name = "base"
    route = "none"
    paper = ""
    symmetric = True  # symmetric by construction: weight of key i-d equals that of i+d, content aside
    extrapolates = True  # runs on sequences longer than max_position_embeddings
    scale_divisor = 1  # content logits are scaled by 1/sqrt(scale_divisor * head_dim) (DeBERTa: 3, TUPE: 2)
    absolute = False  # uses absolute positions, so padding before real tokens would shift them
    length_dependent = False  # the bias depends on the sequence length: `bias(..., real_lengths=[B])` per sequence
    per_layer = False  # the bias has one [H, T, T] slice per layer: `bias` returns [L, H, T, T] (not length-dependent)
    token_embedding_scale = 1.0  # the token embeddings are multiplied by this (Vaswani et al.: sqrt(hidden_size))
    # The bias depends on the content: each layer asks `bias_from_hidden_states(attention_input, layer_index, real)`
    # for its [B, H, T, T] bias instead of sharing one built from positions.
    reads_hidden_states = False

    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.max_position_embeddings = config.max_position_embeddings

    def check_length(self, seq_len: int) -> None:
        if not self.extrapolates and seq_len > self.max_position_embeddings:
            raise ValueError(
                f"Sequence length {seq_len} exceeds max_position_embeddings={self.max_position_embeddings}, and the "
                f"'{self.name}' encoding has a fixed table that cannot extrapolate. Truncate the inputs to "
                f"{self.max_position_embeddings} tokens, or train with a larger max_position_embeddings, or use an "
                "encoding that extrapolates (rope, alibi, t5, kerple, fire, attenuated, shaw, huang, deberta)."
            )

    def reset_parameters(self) -> None:
        """(Re)initialise own parameters with transformers' init helpers, which skip weights already loaded."""

    def layer_context(self, seq_len: int, device, dtype):
        """What every layer's `rotate` or `scores` needs that depends on positions only (rotation tables,
        distance indices), built once per forward by the encoder and handed to each layer."""
        return None

    def context_at_positions(self, context, position_ids: torch.Tensor):
        """`layer_context` for tokens whose positions are `position_ids` ([B, T]; they restart at 0 at each document
        of a packed block). The default keeps the context: distance tables depend on i - j, unchanged inside a
        document. A context indexed by absolute position (rotation angles) overrides this."""
        return context

    def document_restart_problem(self) -> str | None:
        """Why this encoding cannot run a packed block as if each document were alone (masked at the boundaries,
        positions restarting), or None when it can. Embedding tables and absolute biases are read at each token's
        position in its document by the encoder; a bias normalised by the sequence's length cannot be yet."""
        if self.length_dependent:
            return "its bias is normalised by the length of the whole sequence, not of each document"
        return None

    def table_rows(self, seq_len: int) -> set[int] | None:
        """The rows of a learned table indexed by position or distance that a sequence of `seq_len` tokens reads, or
        None when the encoding computes its positions instead of looking them up. A length whose rows a shorter
        training length never read runs on untrained parameters (`hf-posenc extrapolate` reports it)."""
        return None


def signed_distance(seq_len: int, device) -> torch.Tensor:
    """[T, T] matrix of i - j (query minus key): positive when the key is left of the query."""
    positions = torch.arange(seq_len, device=device)
    return positions[:, None] - positions[None, :]


def gather_relative(scores_by_distance: torch.Tensor, distance_index: torch.Tensor) -> torch.Tensor:
    """Turn [B, H, T, R] scores of each row against R relative-position embeddings into [B, H, T, T] by picking,
    for entry (i, j), the embedding `distance_index[i, j]`. Costs T*R dot products instead of T*T*D."""
    batch, heads, seq_len, _ = scores_by_distance.shape
    index = distance_index.expand(batch, heads, seq_len, distance_index.shape[-1])
    return torch.gather(scores_by_distance, -1, index)

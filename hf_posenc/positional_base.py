"""The base of every positional encoding and the position helpers the routes share.

Hub code: copied next to every saved model (positional.py imports it), so it imports only torch and transformers.
"""

from typing import NamedTuple

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
    per_layer_context = False  # `layer_context` holds one context per layer: layer l is handed item l (rotate route)
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

    def bias_by_distance(self, seq_len: int, device) -> torch.Tensor | None:
        """The bias as a small table indexed by distance, for kernels that add it per score (FlexAttention's
        `score_mod`) instead of reading a dense [H, T, T] tensor: float32 [H, 2T - 1] ([L, H, 2T - 1] for `per_layer`
        encodings), entry k being the bias of every (query i, key j) with i - j = k - (T - 1), so that
        `bias(seq_len)[..., i, j] == table[..., i - j + T - 1]`. Built from the parameters, so learned values keep
        their gradients. None (the default) when the bias is not a function of i - j alone (absolute or
        length-dependent biases, content-dependent ones) or the route has no bias."""
        return None


def check_position_range(encoding: PositionalEncoding, position_range: int) -> None:
    """Refuse `randomized_positions_range` for an encoding it cannot apply to, before anything trains."""
    if not position_range:
        return
    if encoding.route not in ("embed", "rotate"):
        raise ValueError(
            f"randomized_positions_range={position_range}: the '{encoding.name}' encoding ({encoding.route} route) "
            "computes from distances, not from each token's position, so there is nothing to randomize; use it with "
            "an encoding that reads positions (embed or rotate route: learned, sinusoidal, rope, ...), or set it to 0."
        )
    if not encoding.extrapolates and position_range > encoding.max_position_embeddings:
        raise ValueError(
            f"randomized_positions_range={position_range} exceeds the '{encoding.name}' table of "
            f"max_position_embeddings={encoding.max_position_embeddings} rows; lower it or enlarge the table."
        )


def randomized_positions(position_range: int, seq_len: int, training: bool, device) -> torch.Tensor | None:
    """Randomized positional encodings (Ruoss et al. 2023): with a range N > 0, the T tokens of a forward get T
    distinct positions drawn from 0..N-1 and sorted, one draw for the whole batch as in the authors' code, so a model
    trained on short blocks has seen the positions of longer ones. The authors draw at test time too; so do we, but
    outside training from a generator seeded by T, so that evaluating twice gives the same numbers. None for N = 0."""
    if not position_range:
        return None
    if seq_len > position_range:
        raise ValueError(
            f"A sequence of {seq_len} tokens cannot take distinct positions from randomized_positions_range="
            f"{position_range}; set the range to at least the longest sequence (Ruoss et al.: the longest test length)."
        )
    generator = None if training else torch.Generator().manual_seed(seq_len)
    draw = torch.randperm(position_range, generator=generator, device=device if training else "cpu")[:seq_len]
    return draw.sort().values.to(device, non_blocking=True)


def signed_distance(seq_len: int, device) -> torch.Tensor:
    """[T, T] matrix of i - j (query minus key): positive when the key is left of the query."""
    positions = torch.arange(seq_len, device=device)
    return positions[:, None] - positions[None, :]


def relative_distances(seq_len: int, device) -> torch.Tensor:
    """[2T - 1] distances i - j from -(T - 1) to T - 1: entry k holds k - (T - 1) (see `bias_by_distance`)."""
    return torch.arange(1 - seq_len, seq_len, device=device)


def gather_relative(scores_by_distance: torch.Tensor, distance_index: torch.Tensor) -> torch.Tensor:
    """Turn [B, H, T, R] scores of each row against R relative-position embeddings into [B, H, T, T] by picking,
    for entry (i, j), the embedding `distance_index[i, j]`. Costs T*R dot products instead of T*T*D."""
    batch, heads, seq_len, _ = scores_by_distance.shape
    index = distance_index.expand(batch, heads, seq_len, distance_index.shape[-1])
    return torch.gather(scores_by_distance, -1, index)


class ScoreEncoding(PositionalEncoding):
    """Base of the score route: `scores(query, key, layer_index, context)` returns [B, H, T, T] logits (before
    scaling) that are added to q.k^T on the eager attention path. Defined here, and re-exported by positional.py, so
    that a sibling file (positional_contextual.py) can subclass it without importing positional.py back."""

    route = "score"

    def scores(self, query: torch.Tensor, key: torch.Tensor, layer_index: int, context) -> torch.Tensor:
        raise NotImplementedError


class RelativeScores(NamedTuple):
    """A score-route term looked up by distance: entry (i, j) is `query_scores[..., i, query_rows[i - j + T - 1]]`
    plus, when there is a key term, `key_scores[..., j, key_rows[i - j + T - 1]]`. The [B, H, T, R] tables hold each
    query's (key's) dot products with the R relative embeddings of its head; the [2T - 1] rows say which embedding a
    distance reads. Eager attention gathers them into [B, H, T, T] (`dense`); FlexAttention reads them score by score
    (positional_flex.py), so no [B, H, T, T] tensor is built."""

    query_scores: torch.Tensor
    query_rows: torch.Tensor
    key_scores: torch.Tensor | None = None
    key_rows: torch.Tensor | None = None

    def dense(self) -> torch.Tensor:
        seq_len = self.query_scores.shape[-2]
        distance = signed_distance(seq_len, self.query_rows.device) + seq_len - 1
        total = gather_relative(self.query_scores, self.query_rows[distance])
        if self.key_scores is not None:
            # Rows of key_scores are keys: gathered at (j, i), then transposed to (i, j).
            total = total + gather_relative(self.key_scores, self.key_rows[distance].T).transpose(-1, -2)
        return total


class RelativeScoreEncoding(ScoreEncoding):
    """Base of the score-route encodings whose terms are relative embeddings chosen by the distance i - j alone
    (Shaw, Huang, DeBERTa): they implement `relative_scores`, which both eager attention and FlexAttention read."""

    def relative_scores(self, query: torch.Tensor, key: torch.Tensor, layer_index: int, context) -> RelativeScores:
        raise NotImplementedError

    def scores(self, query: torch.Tensor, key: torch.Tensor, layer_index: int, context) -> torch.Tensor:
        return self.relative_scores(query, key, layer_index, context).dense()

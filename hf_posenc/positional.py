"""Positional encodings, one small class each, grouped by the route by which position enters attention.

Routes (see "The variants" in README.md):
  none    no position at all.
  embed   a [T, D] tensor added to the token embeddings.
  rotate  a position-dependent rotation of queries and keys.
  bias    an additive [H, T, T] pre-softmax bias that depends only on positions; built once per forward and
          shared by every layer, it is folded into the float mask of scaled_dot_product_attention.
  score   terms that need queries or keys against relative position embeddings; computed per layer on the
          eager attention path, or by FlexAttention when they are looked up by distance (`RelativeScoreEncoding`).

The encoder asks an encoding for what its route needs and never looks at its name. The base class and shared
helpers are in positional_base.py, the bias route in positional_bias.py (the content-dependent forgetting gate in
positional_gated.py), the rotate route in positional_rotary.py (learned commuting rotations in
positional_learned_rotation.py), the score route's contextual counts (CoPE) in positional_contextual.py, and
FlexAttention in positional_flex.py; this file holds the other routes and the registry `ENCODINGS`. All are Hub
code: copied next to every saved model, so they import only torch and transformers.
"""

import math

import torch
from torch import nn
from transformers import initialization as init

from .positional_base import (
    PositionalEncoding,
    RelativeScoreEncoding,
    RelativeScores,
    ScoreEncoding,
    gather_relative,
    relative_distances,
    signed_distance,
)
from .positional_bias import (
    ALiBiBias,
    AttenuatedBias,
    BiasEncoding,
    FireBias,
    KerpleBias,
    SandwichBias,
    T5RelativeBias,
    TupeBias,
    alibi_slopes,
    per_head_values,
    t5_relative_bucket,
)
from .positional_contextual import ContextualPositionScores
from .positional_gated import ForgettingGateBias
from .positional_learned_rotation import LearnedCommutingRotation
from .positional_rotary import RotaryEncoding

__all__ = [
    "ENCODINGS",
    "BiasEncoding",
    "PositionalEncoding",
    "RelativeScoreEncoding",
    "RelativeScores",
    "ScoreEncoding",
    "alibi_slopes",
    "deberta_log_bucket",
    "gather_relative",
    "per_head_values",
    "signed_distance",
    "t5_relative_bucket",
]


# ----------------------------------------------------------------------------------------------------- none
class NoPositionalEncoding(PositionalEncoding):
    """NoPE: no positional information at all; the negative control. Attention is permutation-equivariant, so
    word order is invisible to the model. Route: none. Parameters: none. Symmetric by construction."""

    name = "nope"
    route = "none"
    paper = (
        "Negative control (no positional encoding); see Haviv et al. 2022, Transformer LMs without positional encodings"
    )


# ---------------------------------------------------------------------------------------------------- embed
class LearnedAbsoluteEncoding(PositionalEncoding):
    """BERT's learned absolute position table (Devlin et al. 2019), added to the token embeddings.
    Route: embed. Parameters: a [max_position_embeddings, hidden_size] table. Not symmetric by construction.
    Cannot run on sequences longer than its table."""

    name = "learned"
    route = "embed"
    paper = "Devlin et al. 2019, BERT"
    absolute = True
    symmetric = False
    extrapolates = False

    def __init__(self, config):
        super().__init__(config)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def embeddings(self, seq_len: int, device, dtype) -> torch.Tensor:
        return self.position_embeddings.weight[:seq_len].to(dtype)

    def table_rows(self, seq_len: int) -> set[int]:
        return set(range(seq_len))


class SinusoidalEncoding(PositionalEncoding):
    """Fixed sine/cosine position vectors (Vaswani et al. 2017) added to the token embeddings, optionally times a
    learnable scalar (`sinusoidal_learnable_scale`). With `sinusoidal_scale_embeddings` the token embeddings are
    multiplied by sqrt(hidden_size) first, as in the paper: each position vector has norm sqrt(hidden_size / 2),
    about 35 times a BERT-initialised token embedding's at hidden size 768, and would drown the tokens.
    Route: embed. Computed on the fly, so any length works. Not symmetric by construction (the dot product of two
    such vectors is, but the projections need not be)."""

    name = "sinusoidal"
    route = "embed"
    paper = "Vaswani et al. 2017, Attention is all you need"
    absolute = True
    symmetric = False

    def __init__(self, config):
        super().__init__(config)
        self.hidden_size = config.hidden_size
        self.scale = nn.Parameter(torch.ones(1)) if config.sinusoidal_learnable_scale else None
        if config.sinusoidal_scale_embeddings:
            self.token_embedding_scale = math.sqrt(config.hidden_size)

    def reset_parameters(self) -> None:
        if self.scale is not None:
            init.ones_(self.scale)

    def embeddings(self, seq_len: int, device, dtype) -> torch.Tensor:
        positions = torch.arange(seq_len, device=device, dtype=torch.float32)[:, None]
        frequencies = torch.exp(
            torch.arange(0, self.hidden_size, 2, device=device, dtype=torch.float32)
            * (-math.log(10000.0) / self.hidden_size)
        )
        table = torch.zeros(seq_len, self.hidden_size, device=device)
        table[:, 0::2] = torch.sin(positions * frequencies)
        table[:, 1::2] = torch.cos(positions * frequencies[: self.hidden_size // 2])
        if self.scale is not None:
            table = table * self.scale
        return table.to(dtype)


# ---------------------------------------------------------------------------------------------------- score
def clipped_distance_rows(seq_len: int, max_distance: int, device) -> torch.Tensor:
    """[2T - 1] row of each distance i - j in a table of 2*max_distance + 1 relative embeddings: i - j clipped."""
    return relative_distances(seq_len, device).clamp(-max_distance, max_distance) + max_distance


class ShawRelativeScores(RelativeScoreEncoding):
    """Shaw et al. 2018: a learned embedding r of the clipped distance i - j per layer, dotted with the query:
    logit(i, j) = q_i.k_j + q_i.r_(i-j). This is BERT's former `position_embedding_type="relative_key"`.
    Route: score. Parameters: `max_relative_position` (clipping distance k; longer distances share the last
    embedding, which is what lets it run at any length). Not symmetric by construction."""

    name = "shaw"
    paper = "Shaw, Uszkoreit, Vaswani 2018, Self-attention with relative position representations"
    symmetric = False
    uses_key_term = False

    def __init__(self, config):
        super().__init__(config)
        self.max_relative_position = config.max_relative_position
        table_size = 2 * self.max_relative_position + 1
        self.distance_embeddings = nn.Parameter(torch.empty(config.num_hidden_layers, table_size, self.head_dim))
        self.initializer_range = config.initializer_range
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.distance_embeddings, std=self.initializer_range)

    def layer_context(self, seq_len: int, device, dtype) -> torch.Tensor:
        """[2T - 1] row of each distance's embedding in the table."""
        return clipped_distance_rows(seq_len, self.max_relative_position, device)

    def table_rows(self, seq_len: int) -> set[int]:
        return set(self.layer_context(seq_len, "cpu", None).unique().tolist())

    def relative_scores(self, query: torch.Tensor, key: torch.Tensor, layer_index: int, rows) -> RelativeScores:
        table = self.distance_embeddings[layer_index].to(query.dtype)
        if not self.uses_key_term:
            return RelativeScores(query @ table.T, rows)
        return RelativeScores(query @ table.T, rows, key @ table.T, rows)


class HuangRelativeScores(ShawRelativeScores):
    """Huang et al. 2020: like Shaw, but the relative embedding is dotted with both the query and the key:
    logit(i, j) = q_i.k_j + q_i.r_(i-j) + k_j.r_(i-j). This is BERT's former
    `position_embedding_type="relative_key_query"`. Route: score. Parameters: `max_relative_position`.
    Not symmetric by construction."""

    name = "huang"
    paper = "Huang, Liang, Xu, Xiang 2020, Improve transformer models with better relative position embeddings"
    uses_key_term = True


def deberta_log_bucket(relative_position: torch.Tensor, num_buckets: int, max_position: int) -> torch.Tensor:
    """DeBERTa's bucketing of a signed distance: exact within num_buckets/2, then logarithmic up to max_position."""
    middle = num_buckets // 2
    distance = relative_position.abs()
    log_position = (
        torch.ceil(
            torch.log(distance.float().clamp(min=1) / middle) / math.log((max_position - 1) / middle) * (middle - 1)
        )
        + middle
    ).long()
    return torch.where(distance <= middle, relative_position, torch.sign(relative_position) * log_position)


class DebertaRelativeScores(RelativeScoreEncoding):
    """DeBERTa's disentangled attention (He et al. 2021): a content-to-position term q_i.Kr[delta(i, j)] and a
    position-to-content term, where delta(i, j) is the log-bucketed i - j, Kr and Qr are per-layer projections of
    one shared, layer-normed relative-embedding table, and all three terms are scaled by 1/sqrt(3d). The
    position-to-content term is k_j.Qr[delta(i, j)] in the released code and in transformers' DeBERTa-v2
    (`deberta_position_to_content="official"`, the default) and k_j.Qr[delta(j, i)] in the paper's printed
    equation (`"paper"`, revision 1's form). Route: score. Parameters: `position_buckets`,
    `max_relative_positions`, `deberta_position_to_content`. Not symmetric by construction."""

    name = "deberta"
    paper = "He, Liu, Gao, Chen 2021, DeBERTa: decoding-enhanced BERT with disentangled attention"
    symmetric = False
    scale_divisor = 3

    def __init__(self, config):
        super().__init__(config)
        self.position_buckets = config.position_buckets
        self.max_relative_positions = config.max_relative_positions
        self.official_position_to_content = config.deberta_position_to_content == "official"
        self.relative_embeddings = nn.Embedding(2 * self.position_buckets, config.hidden_size)
        self.relative_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.position_query = nn.ModuleList(
            nn.Linear(config.hidden_size, config.hidden_size) for _ in range(config.num_hidden_layers)
        )
        self.position_key = nn.ModuleList(
            nn.Linear(config.hidden_size, config.hidden_size) for _ in range(config.num_hidden_layers)
        )

    def layer_context(self, seq_len: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The normalised relative-embedding table shared by all layers, each distance's bucket row in it, and the
        row the position-to-content term reads: delta(i, j) (official) or delta(j, i), the opposite distance's row,
        which relative_distances lists in reverse order (paper)."""
        rows = self.bucket_rows(seq_len, device)
        key_rows = rows if self.official_position_to_content else rows.flip(0)
        return self.relative_norm(self.relative_embeddings.weight), rows, key_rows

    def bucket_rows(self, seq_len: int, device) -> torch.Tensor:
        """[2T - 1] row of each distance i - j in the relative-embedding table."""
        buckets = deberta_log_bucket(
            relative_distances(seq_len, device), self.position_buckets, self.max_relative_positions
        )
        return (buckets + self.position_buckets).clamp(0, 2 * self.position_buckets - 1)

    def table_rows(self, seq_len: int) -> set[int]:
        return set(self.bucket_rows(seq_len, "cpu").unique().tolist())

    def relative_scores(self, query: torch.Tensor, key: torch.Tensor, layer_index: int, context) -> RelativeScores:
        table, rows, key_rows = context
        table_size = table.shape[0]
        relative_keys = self.position_key[layer_index](table).view(table_size, self.num_heads, self.head_dim)
        relative_queries = self.position_query[layer_index](table).view(table_size, self.num_heads, self.head_dim)
        # [B, H, T, R] = each query (key) against every relative embedding of its head.
        content_to_position = query @ relative_keys.permute(1, 2, 0).to(query.dtype)
        position_to_content = key @ relative_queries.permute(1, 2, 0).to(key.dtype)
        return RelativeScores(content_to_position, rows, position_to_content, key_rows)


ENCODINGS: dict[str, type[PositionalEncoding]] = {
    encoding.name: encoding
    for encoding in (
        NoPositionalEncoding,
        LearnedAbsoluteEncoding,
        SinusoidalEncoding,
        ShawRelativeScores,
        HuangRelativeScores,
        T5RelativeBias,
        ALiBiBias,
        RotaryEncoding,
        DebertaRelativeScores,
        TupeBias,
        KerpleBias,
        FireBias,
        AttenuatedBias,
        ForgettingGateBias,
        ContextualPositionScores,
        SandwichBias,
        LearnedCommutingRotation,
    )
}

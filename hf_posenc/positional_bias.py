"""The bias route: encodings that add an [H, T, T] pre-softmax bias depending only on positions (t5, alibi, kerple,
fire, attenuated, tupe). The encoder builds it once per forward, shares it by every layer (or hands each layer its
slice, for `per_layer` encodings) and folds it into the float mask of scaled_dot_product_attention.

Hub code: copied next to every saved model (positional.py imports it), so it imports only torch and transformers.
"""

import math

import torch
from torch import nn
from transformers import initialization as init

from .positional_base import PositionalEncoding, relative_distances, signed_distance


# ----------------------------------------------------------------------------------------------------- bias
class BiasEncoding(PositionalEncoding):
    """Base of the bias route: `bias(seq_len, device)` returns a float32 [H, T, T] additive logit bias."""

    route = "bias"

    def bias(self, seq_len: int, device) -> torch.Tensor:
        raise NotImplementedError


def t5_relative_bucket(relative_position: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's bidirectional bucketing of j - i: half the buckets per direction, exact for small distances,
    logarithmic up to max_distance, and the last bucket for everything beyond."""
    half = num_buckets // 2
    buckets = (relative_position > 0).long() * half
    distance = relative_position.abs()
    max_exact = half // 2
    log_bucket = (
        max_exact
        + (
            torch.log(distance.float().clamp(min=1) / max_exact)
            / math.log(max_distance / max_exact)
            * (half - max_exact)
        ).long()
    )
    log_bucket = log_bucket.clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, log_bucket)


class T5RelativeBias(BiasEncoding):
    """T5's learned relative bias (Raffel et al. 2020): one scalar per head for each bucket of j - i, buckets
    logarithmic beyond a few tokens. Route: bias. Parameters: `relative_attention_num_buckets`,
    `relative_attention_max_distance`. Not symmetric by construction (left and right have their own buckets)."""

    name = "t5"
    paper = "Raffel et al. 2020, Exploring the limits of transfer learning with a unified text-to-text transformer (T5)"
    symmetric = False

    def __init__(self, config, extra_buckets: int = 0):
        super().__init__(config)
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.relative_attention_bias = nn.Embedding(self.num_buckets + extra_buckets, self.num_heads)

    def buckets(self, seq_len: int, device) -> torch.Tensor:
        """[T, T] bucket of each (query i, key j), from the key's offset j - i as T5 computes it."""
        return t5_relative_bucket(-signed_distance(seq_len, device), self.num_buckets, self.max_distance)

    def bias(self, seq_len: int, device, buckets: torch.Tensor | None = None) -> torch.Tensor:
        buckets = self.buckets(seq_len, device) if buckets is None else buckets
        return self.relative_attention_bias(buckets).permute(2, 0, 1).float()

    def bias_by_distance(self, seq_len: int, device) -> torch.Tensor:
        buckets = t5_relative_bucket(-relative_distances(seq_len, device), self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).T.float()

    def table_rows(self, seq_len: int) -> set[int]:
        return set(self.buckets(seq_len, "cpu").unique().tolist())


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's geometric slopes 2^(-8/n), 2^(-16/n), ...; for a head count that is not a power of two, the slopes
    of the nearest lower power of two followed by every other slope of the next one (Press et al. 2022)."""
    closest_power = 2 ** math.floor(math.log2(num_heads))

    def geometric(count: int) -> list[float]:
        return [2.0 ** (-8.0 * (index + 1) / count) for index in range(count)]

    slopes = geometric(closest_power)
    if closest_power < num_heads:
        slopes += geometric(2 * closest_power)[0::2][: num_heads - closest_power]
    return torch.tensor(slopes)


class ALiBiBias(BiasEncoding):
    """ALiBi (Press et al. 2022): bias -m_h * |i - j| with geometric per-head slopes m_h, symmetric in |i - j| as in
    MosaicBERT and JinaBERT. Route: bias. Parameters: `alibi_symmetric` (default True); when False each head gets
    the slope m_h for keys on its left and the slope of the mirrored head m_(H-1-h) on its right, so some heads
    look mostly left and others mostly right; `alibi_learnable_slopes` makes the slopes trainable from those
    values (with `alibi_symmetric=True` one slope per head serves both sides, so the bias stays symmetric).
    Symmetric by construction exactly when `alibi_symmetric=True`."""

    name = "alibi"
    paper = "Press et al. 2022, Train short, test long: attention with linear biases (ALiBi)"

    def __init__(self, config):
        super().__init__(config)
        self.asymmetric = not config.alibi_symmetric
        self.symmetric = config.alibi_symmetric
        if config.alibi_learnable_slopes:
            self.slopes = nn.Parameter(self.initial_slopes())
        else:
            self.register_buffer("slopes", self.initial_slopes(), persistent=False)

    def initial_slopes(self) -> torch.Tensor:
        """[1, H] shared slopes, or [2, H] left and right slopes (the right ones mirrored across heads)."""
        left = alibi_slopes(self.num_heads)
        return torch.stack((left, left.flip(0))) if self.asymmetric else left[None]

    def reset_parameters(self) -> None:
        init.copy_(self.slopes, self.initial_slopes())

    def bias(self, seq_len: int, device) -> torch.Tensor:
        return self.bias_at_distance(signed_distance(seq_len, device))

    def bias_by_distance(self, seq_len: int, device) -> torch.Tensor:
        return self.bias_at_distance(relative_distances(seq_len, device))

    def bias_at_distance(self, distance: torch.Tensor) -> torch.Tensor:
        """[H, *distance.shape]: the bias of query-minus-key distances `distance` (any shape)."""
        distance = distance.float()
        left_slopes = broadcast_per_head(self.slopes[0], distance)
        right_slopes = broadcast_per_head(self.slopes[-1], distance)
        slope = torch.where((distance > 0)[None], left_slopes, right_slopes)
        return -slope.float() * distance.abs()[None]


class KerpleBias(BiasEncoding):
    """KERPLE (Chi et al. 2022): conditionally positive-definite kernels of |i - j| with learnable per-head
    parameters r1, r2 > 0: the logarithmic kernel -r1*log(1 + r2*|i - j|) (`kerple_kernel="log"`, the paper's
    best) or the power kernel -r1*|i - j|^r2 with 0 < r2 <= 2 (`kerple_kernel="power"`). As in the reference code
    (chijames/KERPLE), each head draws its own starting values, r1 ~ U(0, 2) and r2 ~ U(0, 1) for the log kernel,
    r1 ~ U(0, 1) and r2 ~ U(0, 2) for the power kernel, and before each use the stored values are clamped into
    range in place, so a parameter pushed below the floor keeps its gradient. One pair per head, shared by all
    layers, as in the reference. Route: bias. Symmetric by construction (it depends on |i - j| only)."""

    name = "kerple"
    paper = "Chi et al. 2022, KERPLE: kernelized relative positional embedding for length extrapolation"
    floor = 1e-2

    def __init__(self, config):
        super().__init__(config)
        self.kernel = config.kerple_kernel
        self.scale = nn.Parameter(torch.empty(self.num_heads))
        self.shape = nn.Parameter(torch.empty(self.num_heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        log_kernel = self.kernel == "log"
        init.uniform_(self.scale, 0.0, 2.0 if log_kernel else 1.0)
        init.uniform_(self.shape, 0.0, 1.0 if log_kernel else 2.0)

    def bias(self, seq_len: int, device) -> torch.Tensor:
        return self.bias_at_distance(signed_distance(seq_len, device))

    def bias_by_distance(self, seq_len: int, device) -> torch.Tensor:
        return self.bias_at_distance(relative_distances(seq_len, device))

    def bias_at_distance(self, distance: torch.Tensor) -> torch.Tensor:
        """[H, *distance.shape]: the kernel at query-minus-key distances `distance` (any shape)."""
        distance = distance.abs().float()[None]
        # Clamping the stored values (not the graph) keeps the gradient of a parameter that fell below the floor,
        # and gives the same outputs as clamping in the graph for any saved weights.
        with torch.no_grad():
            self.scale.clamp_(min=self.floor)
            self.shape.clamp_(min=self.floor, max=None if self.kernel == "log" else 2.0)
        scale = broadcast_per_head(self.scale.float(), distance[0])
        shape = broadcast_per_head(self.shape.float(), distance[0])
        if self.kernel == "log":
            return -scale * torch.log1p(shape * distance)
        return -scale * distance.pow(shape)


class FireBias(BiasEncoding):
    """FIRE (Li et al. 2023): a small MLP maps a log-normalised distance to one bias per head. The paper is causal:
    query i reads psi(i - j) / psi(max(L, i)), its distance to the key over its own context (the i keys on its
    left), with psi(x) = log(|c x| + 1), a learned c, and a threshold L = |m * L0| whose multiplier m (starting at
    1) is learned while L0 (`fire_init_threshold`) stays fixed, so L moves at the pace of every other parameter.
    Bidirectional adaptation used here: keys on the left are read exactly as the paper does; keys on the right are
    its mirror image, normalised by the query's context on the right, psi(max(L, T - 1 - i)) with T the sequence's
    real length (padding excluded); the MLP reads sign(i - j) times the normalised distance, so that it can tell
    the left side from the right, in [-1, 1] at any length. Like the paper's, the normaliser depends on the query's position, so
    left padding is refused. Route: bias. Parameters: `fire_hidden_size`, `fire_init_c`, `fire_init_threshold`
    (L0). Not symmetric by construction. Revision 1 learned L itself and normalised every query by
    psi(max(L, T)), with |c| + 1e-6 in psi (then FIRE depended on i - j only)."""

    name = "fire"
    absolute = True  # the normaliser reads the query's position (revision 1's did not)
    length_dependent = True
    paper = "Li et al. 2023, Functional interpolation for relative positions improves long context transformers (FIRE)"
    symmetric = False
    normaliser_eps = 1e-6  # added to the normaliser, as in the paper's code, so c -> 0 cannot divide by zero

    def __init__(self, config):
        super().__init__(config)
        self.init_c = config.fire_init_c
        self.init_threshold = config.fire_init_threshold
        self.revision = config.posenc_revision
        self.absolute = self.revision >= 2
        self.mlp = nn.Sequential(
            nn.Linear(1, config.fire_hidden_size), nn.ReLU(), nn.Linear(config.fire_hidden_size, self.num_heads)
        )
        self.c = nn.Parameter(torch.tensor(float(self.init_c)))
        if self.revision >= 2:
            self.threshold_multiplier = nn.Parameter(torch.tensor(1.0))
        else:
            self.threshold = nn.Parameter(torch.tensor(float(self.init_threshold)))

    def reset_parameters(self) -> None:
        init.constant_(self.c, self.init_c)
        if self.revision >= 2:
            init.ones_(self.threshold_multiplier)
        else:
            init.constant_(self.threshold, self.init_threshold)

    def bias(self, seq_len: int, device, real_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """[H, T, T], or [B, H, T, T] normalised by each sequence's own length when `real_lengths` ([B]) is given."""
        distance = signed_distance(seq_len, device).float()
        # torch.full, not torch.tensor: a tensor copied from the host would cost a synchronisation on a GPU.
        lengths = torch.full((), float(seq_len), device=device) if real_lengths is None else real_lengths.float()
        if real_lengths is not None:
            lengths = lengths[:, None, None]
        c = self.c.float()
        if self.revision >= 2:
            query = torch.arange(seq_len, device=device, dtype=torch.float32)[:, None]
            # The query's context on the key's side: the i keys on its left, or the T - 1 - i on its right.
            context = torch.where(distance >= 0, query, lengths - 1 - query)
            threshold = (self.threshold_multiplier.float() * self.init_threshold).abs()
            normaliser = torch.log1p((c * torch.maximum(threshold, context)).abs()) + self.normaliser_eps
            features = torch.sign(distance) * torch.log1p((c * distance).abs()) / normaliser
        else:
            c = c.abs() + 1e-6
            normaliser = torch.log1p(c * torch.maximum(self.threshold.float().abs(), lengths))
            features = torch.sign(distance) * torch.log1p(c * distance.abs()) / normaliser
        return self.mlp(features[..., None].to(self.mlp[0].weight.dtype)).movedim(-1, -3).float()


def broadcast_per_head(values: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    """Per-head values [H] shaped to broadcast against [H, *distance.shape]."""
    return values.view(-1, *(1,) * distance.dim())


def per_head_values(value, num_heads: int, per_head: bool) -> list[float]:
    """A float or list of floats as the list of starting values: one per head, or a single shared one."""
    values = [float(item) for item in value] if isinstance(value, (list, tuple)) else [float(value)]
    return values * num_heads if per_head and len(values) == 1 else values


class AttenuatedBias(BiasEncoding):
    """The locality/symmetry paper's attenuated encoding (Chen et al. 2023): a Gaussian penalty on the distance
    d = |i - j|, -w*d^2 for keys left of the query and -s*w*d^2 for keys right of it. `w`
    (`attenuation_strength`) dials locality, `s` (`attenuation_symmetry`) dials symmetry: s = 1 is symmetric,
    s < 1 favours the right, s > 1 the left. Each is a float (shared by all heads) or a list with one value per
    head; `attenuation_per_head=True` expands a float to one value per head and `attenuation_learnable=True`
    trains them. Route: bias. Symmetric by construction when s = 1 and the values are fixed.

    `attenuation_form` chooses what is added to the logits:
      "logit"        the penalty itself (default): the log-weights of a Gaussian, so without content the attention
                     of each row is exactly a Gaussian of variance 1/(2w); w and s are the paper's dials.
      "probability"  the seed repository's `attenuated.py` (tigerchen52/locality_symmetry): the Gaussian's
                     *probabilities*, softmax over the row's real keys of the penalty, added to the logits; values
                     in (0, 1], so a much weaker locality (seed default w = 0.5, s = 1, fixed, one table for every
                     head and layer). The seed normalises over the padded length; here over the real keys, so
                     padding never changes outputs (identical without padding).
      "learned_table" the seed repository's `attenuated_l.py`: a learnable table per layer and head of
                     `max_position_embeddings` values indexed by |i - j|, started from the one-sided normalised
                     Gaussian exp(-w d^2) / sum over d' < max_position_embeddings of exp(-w d'^2); symmetric (s must
                     be 1) and limited to `max_position_embeddings` tokens, like its table."""

    name = "attenuated"
    paper = "Chen, Varoquaux, Suchanek 2023, The locality and symmetry of positional encodings"

    def __init__(self, config):
        super().__init__(config)
        self.form = config.attenuation_form
        per_head = config.attenuation_per_head
        self.init_strength = per_head_values(config.attenuation_strength, self.num_heads, per_head)
        self.init_symmetry = per_head_values(config.attenuation_symmetry, self.num_heads, per_head)
        if self.form == "learned_table":
            self.per_layer, self.extrapolates = True, False
            self.num_layers = config.num_hidden_layers
            self.distance_table = nn.Parameter(
                torch.empty(self.num_layers, self.num_heads, self.max_position_embeddings)
            )
            self.reset_parameters()
            return
        self.length_dependent = self.form == "probability"
        self.symmetric = all(ratio == 1 for ratio in self.init_symmetry) and not config.attenuation_learnable
        if config.attenuation_learnable:
            self.strength = nn.Parameter(torch.tensor(self.init_strength))
            self.symmetry_ratio = nn.Parameter(torch.tensor(self.init_symmetry))
        else:
            self.register_buffer("strength", torch.tensor(self.init_strength), persistent=False)
            self.register_buffer("symmetry_ratio", torch.tensor(self.init_symmetry), persistent=False)

    def reset_parameters(self) -> None:
        if self.form == "learned_table":
            distance = torch.arange(self.max_position_embeddings, dtype=torch.float64)
            strength = torch.tensor(self.init_strength, dtype=torch.float64).expand(self.num_heads)[:, None]
            one_sided = torch.softmax(-strength * distance.square(), dim=-1)
            init.copy_(self.distance_table, one_sided.float().expand_as(self.distance_table))
            return
        init.copy_(self.strength, torch.tensor(self.init_strength))
        init.copy_(self.symmetry_ratio, torch.tensor(self.init_symmetry))

    def table_rows(self, seq_len: int) -> set[int] | None:
        return set(range(seq_len)) if self.form == "learned_table" else None

    def bias_by_distance(self, seq_len: int, device) -> torch.Tensor | None:
        """[H, 2T - 1], or [L, H, 2T - 1] for the learned table; None for the probability form, whose softmax
        over each row's real keys makes it depend on the row and the sequence's length."""
        if self.form == "probability":
            return None
        distance = relative_distances(seq_len, device)
        if self.form == "learned_table":
            return self.distance_table[:, :, distance.abs()].float()
        return self.penalty_at(distance)

    def penalty(self, seq_len: int, device) -> torch.Tensor:
        """[H, T, T] Gaussian penalty -w d^2 (left) and -s w d^2 (right)."""
        return self.penalty_at(signed_distance(seq_len, device))

    def penalty_at(self, distance: torch.Tensor) -> torch.Tensor:
        """[H, *distance.shape]: the penalty at query-minus-key distances `distance` (any shape)."""
        distance = distance.float()
        # Learnable values may drift negative; a negative w or s would reward distance, so keep them >= 0.
        strength = broadcast_per_head(self.strength.float().clamp(min=0).expand(self.num_heads), distance)
        ratio = broadcast_per_head(self.symmetry_ratio.float().clamp(min=0).expand(self.num_heads), distance)
        side_factor = torch.where((distance < 0)[None], ratio, torch.ones_like(ratio))
        return -strength * side_factor * distance.square()[None]

    def bias(self, seq_len: int, device, real_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """[H, T, T]; [L, H, T, T] for the learned table; [B, H, T, T] for the probability form with
        `real_lengths` ([B]), each sequence normalised over its own real keys."""
        if self.form == "learned_table":
            distance = signed_distance(seq_len, device).abs()
            return self.distance_table[:, :, distance].float()
        penalty = self.penalty(seq_len, device)
        if self.form == "logit":
            return penalty
        if real_lengths is not None:
            padded_key = torch.arange(seq_len, device=device)[None, :] >= real_lengths[:, None]  # [B, T]
            penalty = penalty.masked_fill(padded_key[:, None, None, :], float("-inf"))
        return torch.softmax(penalty, dim=-1)


class TupeBias(BiasEncoding):
    """TUPE-R (Ke et al. 2021): positions leave the token embeddings and enter attention as an untied positional
    correlation (p_i U_q)(p_j U_k)^T / sqrt(2d) with their own layer-normed table and projections, plus T5's
    relative bias; content logits are scaled by 1/sqrt(2d). Computed once per forward and shared by all layers, as
    in the reference code (guolinke/TUPE). With `tupe_untie_cls` the [CLS] token (position 0) is untied from
    positions as the reference does it: token i reads table row i + 1; the [CLS] row of the correlation is
    p_0.p_0 and its column p_1.p_1 (projected rows 0 and 1 of the table); in the relative bias the [CLS] row reads
    bucket num_buckets/2 (which no distance uses) and its column an extra bucket, the row winning at [0, 0].
    Revision 1 untied [CLS] only from the correlation, with two learned values per head, and kept the relative
    bias on its row and column. Route: bias. Parameters: `max_position_embeddings`,
    `relative_attention_num_buckets`, `relative_attention_max_distance`, `tupe_untie_cls`. Not symmetric by
    construction; cannot extrapolate beyond its absolute table."""

    name = "tupe"
    paper = "Ke, He, Liu 2021, Rethinking positional encoding in language pre-training (TUPE)"
    absolute = True
    symmetric = False
    extrapolates = False
    scale_divisor = 2

    def __init__(self, config):
        super().__init__(config)
        self.untie_cls = config.tupe_untie_cls
        self.reference_cls = self.untie_cls and config.posenc_revision >= 2
        table_rows = config.max_position_embeddings + (1 if self.reference_cls else 0)
        self.position_embeddings = nn.Embedding(table_rows, config.hidden_size)
        self.position_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.position_query = nn.Linear(config.hidden_size, config.hidden_size)
        self.position_key = nn.Linear(config.hidden_size, config.hidden_size)
        self.relative = T5RelativeBias(config, extra_buckets=1 if self.reference_cls else 0)
        if self.untie_cls and not self.reference_cls:
            self.cls_to_others = nn.Parameter(torch.zeros(self.num_heads))
            self.others_to_cls = nn.Parameter(torch.zeros(self.num_heads))

    def reset_parameters(self) -> None:
        if self.untie_cls and not self.reference_cls:
            init.zeros_(self.cls_to_others)
            init.zeros_(self.others_to_cls)

    def correlation(self, rows: int) -> torch.Tensor:
        """[H, rows, rows] positional correlation of the first `rows` rows of the table."""
        positions = self.position_norm(self.position_embeddings.weight[:rows])
        queries = self.position_query(positions).view(rows, self.num_heads, self.head_dim).transpose(0, 1)
        keys = self.position_key(positions).view(rows, self.num_heads, self.head_dim).transpose(0, 1)
        return (queries @ keys.transpose(-1, -2)).float() / math.sqrt(2 * self.head_dim)

    def bias(self, seq_len: int, device) -> torch.Tensor:
        buckets = self.relative.buckets(seq_len, device)
        if self.reference_cls:
            table = self.correlation(seq_len + 1)
            correlation = table[:, 1:, 1:].clone()
            correlation[:, :, 0] = table[:, 1, 1, None]
            correlation[:, 0, :] = table[:, 0, 0, None]
            buckets = buckets.clone()
            buckets[:, 0] = self.relative.num_buckets
            buckets[0, :] = self.relative.num_buckets // 2
        else:
            correlation = self.correlation(seq_len)
            if self.untie_cls:
                correlation = correlation.clone()
                correlation[:, 0, :] = self.cls_to_others.float()[:, None]
                correlation[:, 1:, 0] = self.others_to_cls.float()[:, None]
        return correlation + self.relative.bias(seq_len, device, buckets)

    def table_rows(self, seq_len: int) -> set[int]:
        return set(range(seq_len + (1 if self.reference_cls else 0)))


class SandwichBias(BiasEncoding):
    """Sandwich (Chi, Fan, Rudnicky, Ramadge 2023): the dot product of the sinusoidal position vectors of the query and
    the key, sum over k = 1..d'/2 of cos((i - j) / 10000^(2k/d')), less its value d'/2 at distance 0, divided for head
    h = 1..H by 8h/H, as NVIDIA NeMo's `SandwichRelativePositionEmbedding` computes it with `bidirectional=True`. The
    bias is 0 at distance 0 and below 0 elsewhere; head 1 has the steepest one (the scale recalls ALiBi's slopes).
    Route: bias. Parameters: `sandwich_dimension` d' (even; default the head dimension, which NeMo passes); nothing is
    learned. Symmetric by construction (cos is even), relative, and computed at any length."""

    name = "sandwich"
    paper = (
        "Chi, Fan, Rudnicky, Ramadge 2023, Dissecting transformer length extrapolation via the lens of receptive field "
        "analysis (Sandwich)"
    )

    def __init__(self, config):
        super().__init__(config)
        self.dimension = config.sandwich_dimension or self.head_dim

    def bias_at_distance(self, distance: torch.Tensor) -> torch.Tensor:
        """[H, *distance.shape] float32: the bias of query-minus-key distances `distance` (any shape)."""
        half = self.dimension // 2
        frequency_index = torch.arange(1, half + 1, device=distance.device, dtype=torch.float32)
        inverse_frequencies = 10000.0 ** (-2.0 * frequency_index / self.dimension)
        angles = distance.abs().float()[..., None] * inverse_frequencies
        products = angles.cos().sum(-1) - half
        head_number = torch.arange(1, self.num_heads + 1, device=distance.device, dtype=torch.float32)
        head_scale = broadcast_per_head(8.0 * head_number / self.num_heads, distance)
        return products[None] / head_scale

    def bias(self, seq_len: int, device) -> torch.Tensor:
        # The cosines are summed once per distance, not per (i, j) pair: [H, T] then gathered into [H, T, T].
        profile = self.bias_at_distance(torch.arange(seq_len, device=device))
        return profile[:, signed_distance(seq_len, device).abs()]

    def bias_by_distance(self, seq_len: int, device) -> torch.Tensor:
        return self.bias_at_distance(relative_distances(seq_len, device))

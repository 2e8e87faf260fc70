"""Configurations: one base with BERT's hyper-parameters and one small class per positional encoding.

Hub code: copied next to every saved model, so it imports only transformers and the standard library.
"""

import math

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

# Revision of the encodings' definitions. 1: every model saved before the encodings were checked against their
# reference implementations; 2: the reference forms (docs/variants.md lists each change). A model keeps computing
# what it computed when it was saved: its config stores its revision, and the encodings follow it.
POSENC_REVISION = 2


def revision_of(settings: dict) -> int:
    """The revision a config is built for: the one it names; 1 for a config.json written before revisions existed
    (it carries `transformers_version` but no `posenc_revision`); otherwise the current one."""
    revision = settings.get("posenc_revision")
    if revision is None:
        return 1 if "transformers_version" in settings else POSENC_REVISION
    if revision not in range(1, POSENC_REVISION + 1):
        raise ValueError(
            f"posenc_revision={revision!r}: this hf_posenc knows revisions 1 to {POSENC_REVISION}. A model saved by a "
            "newer hf_posenc needs that version (pip install -U hf_posenc), or load it with trust_remote_code=True "
            "to use the code saved with it."
        )
    return revision


class PosEncConfig(PreTrainedConfig):
    """BERT's hyper-parameters plus `pre_layer_norm` (False: post-LN as in BERT; True: pre-LN with a final norm) and
    `posenc_revision` (which definition of the encodings the model was built with; see `POSENC_REVISION`) and
    `randomized_positions_range` (Ruoss et al. 2023: N > 0 draws each forward's positions from 0..N-1; see
    `positional_base.randomized_positions`). Each subclass fixes `variant` (the positional encoding) and adds that
    encoding's parameters. An option whose default changed between revisions defaults to None and is resolved from
    the revision, then stored explicitly.

    Every subclass defines `__init__`, even a trivial one: transformers turns a config subclass without its own
    `__init__` into a dataclass whose generated `__init__` would bypass this one."""

    model_type = "posenc"
    variant = "base"
    _auto_class = "AutoConfig"

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pre_layer_norm: bool = False,
        classifier_dropout: float | None = None,
        pad_token_id: int = 0,
        tie_word_embeddings: bool = True,
        posenc_revision: int | None = None,
        randomized_positions_range: int = 0,
        **kwargs,
    ):
        self.posenc_revision = revision_of({**kwargs, "posenc_revision": posenc_revision})
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.pre_layer_norm = pre_layer_norm
        self.classifier_dropout = classifier_dropout
        self.pad_token_id = pad_token_id
        self.tie_word_embeddings = tie_word_embeddings
        self.randomized_positions_range = randomized_positions_range
        self.check_settings()  # before transformers' own checks, which would fail less clearly (zero heads: 1/0)
        kwargs.setdefault("auto_map", self.hub_auto_map())
        super().__init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def hub_auto_map(cls) -> dict[str, str]:
        """Where the Auto classes find this variant's code in a saved folder, one entry per head of `HEADS`, so that
        every saved model loads with trust_remote_code as any of them."""
        prefix = cls.__name__.removesuffix("Config")
        return {
            "AutoConfig": f"configuration_posenc.{cls.__name__}",
            **{auto_class: f"modeling_posenc.{prefix}{suffix}" for suffix, auto_class in HEADS.items()},
        }

    def check_settings(self) -> None:
        """Refuse settings that would build a model that cannot work (a size of zero, a negative epsilon that makes
        every output NaN, ...), naming the field and a valid value."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1; got {value!r}.")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}; "
                "pick a head count that divides it (for example "
                f"{largest_divisor_up_to(self.hidden_size, self.num_attention_heads)})."
            )
        if not (isinstance(self.layer_norm_eps, (int, float)) and 0 < self.layer_norm_eps < 1):
            raise ValueError(
                f"layer_norm_eps must be a small positive number (BERT: 1e-12); got {self.layer_norm_eps!r}."
            )
        for name in ("pre_layer_norm", "tie_word_embeddings"):
            require_bool(name, getattr(self, name))
        value = self.randomized_positions_range
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"randomized_positions_range must be a whole number >= 0 (0: off; N: positions drawn from 0..N-1, "
                f"Ruoss et al. 2023); got {value!r}."
            )
        if not callable(self.hidden_act) and not (isinstance(self.hidden_act, str) and self.hidden_act in ACT2FN):
            raise ValueError(
                f"hidden_act must name one of transformers' activations (BERT: 'gelu'; also 'relu', 'silu', "
                f"'gelu_new', ...); got {self.hidden_act!r}."
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"{name} must be a probability in [0, 1); got {value!r}.")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id={self.pad_token_id} is not a token of the {self.vocab_size}-token vocabulary; give the "
                "tokenizer's pad_token_id."
            )


# The heads every variant has: class-name suffix -> the Auto class that loads it. modeling_posenc builds one class per
# (variant, head) from this table, the saved `auto_map` lists them, and importing hf_posenc registers them.
HEADS = {
    "Model": "AutoModel",
    "ForMaskedLM": "AutoModelForMaskedLM",
    "ForSequenceClassification": "AutoModelForSequenceClassification",
    "ForTokenClassification": "AutoModelForTokenClassification",
}


def largest_divisor_up_to(number: int, limit: int) -> int:
    return max(divisor for divisor in range(1, limit + 1) if number % divisor == 0)


def require_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {value!r}.")


def require_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")


def require_whole_number(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}; got {value!r}.")


def require_finite_non_negative(name: str, value) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) or item < 0:
            raise ValueError(f"{name} must be a finite number >= 0 (or a list of them, one per head); got {value!r}.")


class PosEncNopeConfig(PosEncConfig):
    """No positional encoding: the negative control."""

    model_type = "posenc_nope"
    variant = "nope"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)


class PosEncLearnedConfig(PosEncConfig):
    """BERT's learned absolute position table of `max_position_embeddings` rows."""

    model_type = "posenc_learned"
    variant = "learned"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)


class PosEncSinusoidalConfig(PosEncConfig):
    """Fixed sinusoidal positions; `sinusoidal_learnable_scale` multiplies them by a trained scalar;
    `sinusoidal_scale_embeddings` multiplies the token embeddings by sqrt(hidden_size) as Vaswani et al. do
    (revision 1: never)."""

    model_type = "posenc_sinusoidal"
    variant = "sinusoidal"

    def __init__(
        self, sinusoidal_learnable_scale: bool = False, sinusoidal_scale_embeddings: bool | None = None, **kwargs
    ):
        if sinusoidal_scale_embeddings is None:
            sinusoidal_scale_embeddings = revision_of(kwargs) >= 2
        require_bool("sinusoidal_scale_embeddings", sinusoidal_scale_embeddings)
        require_bool("sinusoidal_learnable_scale", sinusoidal_learnable_scale)
        self.sinusoidal_learnable_scale = sinusoidal_learnable_scale
        self.sinusoidal_scale_embeddings = sinusoidal_scale_embeddings
        super().__init__(**kwargs)


class PosEncShawConfig(PosEncConfig):
    """Relative embeddings dotted with the query; distances beyond `max_relative_position` are clipped."""

    model_type = "posenc_shaw"
    variant = "shaw"

    def __init__(self, max_relative_position: int = 64, **kwargs):
        require_whole_number("max_relative_position", max_relative_position)
        self.max_relative_position = max_relative_position
        super().__init__(**kwargs)


class PosEncHuangConfig(PosEncShawConfig):
    """Relative embeddings dotted with the query and the key; same clipping as Shaw."""

    model_type = "posenc_huang"
    variant = "huang"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)


class PosEncT5Config(PosEncConfig):
    """T5's bucketed relative bias: `relative_attention_num_buckets` buckets (half per direction), logarithmic up to
    `relative_attention_max_distance`."""

    model_type = "posenc_t5"
    variant = "t5"

    def __init__(self, relative_attention_num_buckets: int = 32, relative_attention_max_distance: int = 128, **kwargs):
        if relative_attention_num_buckets < 4 or relative_attention_num_buckets % 2:
            raise ValueError(
                f"relative_attention_num_buckets must be an even number >= 4; got {relative_attention_num_buckets}."
            )
        # Half the buckets per direction, the first half of those exact: the logarithmic ones start at distance
        # num_buckets/4 and must reach further, or they would fold back onto the exact buckets.
        exact_distances = relative_attention_num_buckets // 4
        if relative_attention_max_distance <= exact_distances:
            raise ValueError(
                f"relative_attention_max_distance={relative_attention_max_distance} must exceed "
                f"relative_attention_num_buckets/4 = {exact_distances}, where the logarithmic buckets start; "
                f"raise it (T5 uses 128 with 32 buckets) or lower relative_attention_num_buckets."
            )
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        super().__init__(**kwargs)


class PosEncAlibiConfig(PosEncConfig):
    """ALiBi slopes: symmetric in |i - j| by default; `alibi_symmetric=False` gives each head a left and a right
    slope; `alibi_learnable_slopes` trains them."""

    model_type = "posenc_alibi"
    variant = "alibi"

    def __init__(self, alibi_symmetric: bool = True, alibi_learnable_slopes: bool = False, **kwargs):
        require_bool("alibi_symmetric", alibi_symmetric)
        require_bool("alibi_learnable_slopes", alibi_learnable_slopes)
        self.alibi_symmetric = alibi_symmetric
        self.alibi_learnable_slopes = alibi_learnable_slopes
        super().__init__(**kwargs)


# The context-extension scalings of transformers' modeling_rope_utils: rope_type -> (required keys, optional keys).
# `original_max_position_embeddings` is the length a scaling extends from (hf-posenc extrapolate: the trained length).
ROPE_CONTEXT_SCALINGS = {
    "linear": ({"factor"}, set()),
    "dynamic": ({"factor"}, {"original_max_position_embeddings"}),
    "yarn": (
        {"factor"},
        {
            "original_max_position_embeddings",
            "attention_factor",
            "beta_fast",
            "beta_slow",
            "mscale",
            "mscale_all_dim",
            "truncate",
        },
    ),  # fmt: skip
    "longrope": ({"factor", "short_factor", "long_factor"}, {"original_max_position_embeddings", "attention_factor"}),
    "llama3": ({"factor", "low_freq_factor", "high_freq_factor"}, {"original_max_position_embeddings"}),
}


def require_fraction(name: str, value, allow_zero: bool) -> None:
    low = "0 <=" if allow_zero else "0 <"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (0 <= value <= 1 and (allow_zero or value))
    ):
        raise ValueError(f"{name} must be a number with {low} {name} <= 1; got {value!r}.")


def check_rope_context_scaling(scaling, rotated_pairs: int) -> None:
    """Refuse a scaling that transformers' functions would reject with a KeyError or compute into nonsense."""
    if scaling is None:
        return
    example = '{"rope_type": "yarn", "factor": 4}'
    if not isinstance(scaling, dict) or scaling.get("rope_type") not in ROPE_CONTEXT_SCALINGS:
        raise ValueError(
            f"rope_context_scaling must be a dict whose rope_type is one of {', '.join(ROPE_CONTEXT_SCALINGS)} (for "
            f"example {example}), or None; got {scaling!r}."
        )
    rope_type = scaling["rope_type"]
    required, optional = ROPE_CONTEXT_SCALINGS[rope_type]
    missing, unknown = required - set(scaling), set(scaling) - required - optional - {"rope_type"}
    if missing or unknown:
        problem = f"lacks {sorted(missing)}" if missing else f"has keys it does not use: {sorted(unknown)}"
        raise ValueError(
            f"rope_context_scaling of type {rope_type!r} {problem}; it takes {sorted(required)} and optionally "
            f"{sorted(optional)} (rope_theta and the rotated fraction are the model's own settings)."
        )
    for key, value in scaling.items():
        if key in ("rope_type", "truncate"):
            continue
        values = value if key in ("short_factor", "long_factor") and isinstance(value, list) else [value]
        if key in ("short_factor", "long_factor") and len(values) != rotated_pairs:
            raise ValueError(f"rope_context_scaling {key} must list {rotated_pairs} numbers (one per rotated pair).")
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0 < item < math.inf:
                raise ValueError(f"rope_context_scaling {key} must be a finite number > 0; got {value!r}.")
    if scaling["factor"] < 1:
        raise ValueError(f"rope_context_scaling factor must be >= 1 (how many times longer); got {scaling['factor']}.")
    if "truncate" in scaling:
        require_bool("rope_context_scaling truncate", scaling["truncate"])
    if "original_max_position_embeddings" in scaling:
        require_whole_number("rope_context_scaling original_max_position_embeddings",
                             scaling["original_max_position_embeddings"])  # fmt: skip
    if rope_type == "llama3" and not scaling["low_freq_factor"] < scaling["high_freq_factor"]:
        raise ValueError("rope_context_scaling low_freq_factor must be below high_freq_factor (Llama 3.1: 1 and 4).")


class PosEncRopeConfig(PosEncConfig):
    """Rotary embedding with base `rope_theta`; `rope_partial_rotary_factor` (the fraction of each head's dimensions
    that rotate), `rope_frequency_fraction` (p-RoPE: the fraction of the highest frequencies kept, the others set to
    zero) and `rope_context_scaling` (a transformers `rope_parameters` dict of type linear, dynamic, yarn, longrope or
    llama3). The rotated dimension must be even; partial rotation and p-RoPE do not combine."""

    model_type = "posenc_rope"
    variant = "rope"

    def __init__(
        self,
        rope_theta: float = 10000.0,
        rope_partial_rotary_factor: float = 1.0,
        rope_frequency_fraction: float = 1.0,
        rope_context_scaling: dict | None = None,
        **kwargs,
    ):
        if isinstance(rope_theta, bool) or not isinstance(rope_theta, (int, float)) or not 1 < rope_theta < math.inf:
            raise ValueError(f"rope_theta must be a finite number > 1 (10000 is the usual base); got {rope_theta!r}.")
        require_fraction("rope_partial_rotary_factor", rope_partial_rotary_factor, allow_zero=False)
        require_fraction("rope_frequency_fraction", rope_frequency_fraction, allow_zero=True)
        if rope_partial_rotary_factor < 1 and rope_frequency_fraction < 1:
            raise ValueError(
                "rope_partial_rotary_factor and rope_frequency_fraction are two ways to leave dimensions unrotated "
                "(fewer rotated dimensions, or the lowest frequencies removed); set one of them below 1, not both."
            )
        self.rope_theta = rope_theta
        self.rope_partial_rotary_factor = rope_partial_rotary_factor
        self.rope_frequency_fraction = rope_frequency_fraction
        self.rope_context_scaling = rope_context_scaling
        super().__init__(**kwargs)
        rotary_dim = int(self.head_dim * rope_partial_rotary_factor)
        if self.head_dim % 2:
            raise ValueError(
                f"rope rotates pairs of dimensions, but the head dimension hidden_size/num_attention_heads = "
                f"{self.hidden_size}/{self.num_attention_heads} = {self.head_dim} is odd; change hidden_size or "
                "num_attention_heads so that it is even."
            )
        if rotary_dim % 2 or rotary_dim == 0:
            raise ValueError(
                f"rope rotates pairs of dimensions, but int(head_dim * rope_partial_rotary_factor) = "
                f"int({self.head_dim} * {rope_partial_rotary_factor}) = {rotary_dim} is odd or zero; choose a factor "
                f"that rotates an even number of the {self.head_dim} dimensions (e.g. 0.5)."
            )
        check_rope_context_scaling(rope_context_scaling, rotary_dim // 2)


class PosEncDebertaConfig(PosEncConfig):
    """Disentangled attention over `position_buckets` log buckets up to `max_relative_positions`.
    `deberta_position_to_content`: "official" (the released DeBERTa code and transformers: k_j . Qr[delta(i, j)]) or
    "paper" (the paper's printed equation: k_j . Qr[delta(j, i)]; revision 1's form)."""

    model_type = "posenc_deberta"
    variant = "deberta"

    def __init__(
        self,
        position_buckets: int = 256,
        max_relative_positions: int = 512,
        deberta_position_to_content: str | None = None,
        **kwargs,
    ):
        if deberta_position_to_content is None:
            deberta_position_to_content = "official" if revision_of(kwargs) >= 2 else "paper"
        require_choice("deberta_position_to_content", deberta_position_to_content, ("official", "paper"))
        self.deberta_position_to_content = deberta_position_to_content
        if position_buckets < 2 or max_relative_positions <= position_buckets // 2 + 1:
            raise ValueError(
                "deberta needs position_buckets >= 2 and max_relative_positions > position_buckets/2 + 1; got "
                f"position_buckets={position_buckets}, max_relative_positions={max_relative_positions}."
            )
        self.position_buckets = position_buckets
        self.max_relative_positions = max_relative_positions
        super().__init__(**kwargs)


class PosEncTupeConfig(PosEncT5Config):
    """Untied positional correlation over a `max_position_embeddings` table plus T5's relative bias;
    `tupe_untie_cls` frees [CLS] from positions."""

    model_type = "posenc_tupe"
    variant = "tupe"

    def __init__(self, tupe_untie_cls: bool = True, **kwargs):
        require_bool("tupe_untie_cls", tupe_untie_cls)
        self.tupe_untie_cls = tupe_untie_cls
        super().__init__(**kwargs)


class PosEncKerpleConfig(PosEncConfig):
    """KERPLE kernels of |i - j|: `kerple_kernel` is "log" or "power"."""

    model_type = "posenc_kerple"
    variant = "kerple"

    def __init__(self, kerple_kernel: str = "log", **kwargs):
        if kerple_kernel not in ("log", "power"):
            raise ValueError(f"kerple_kernel must be 'log' or 'power'; got {kerple_kernel!r}.")
        self.kerple_kernel = kerple_kernel
        super().__init__(**kwargs)


class PosEncFireConfig(PosEncConfig):
    """FIRE's MLP of `fire_hidden_size` units over log-normalised distance, with psi(x) = log(c*x + 1) and a
    length threshold L; `fire_init_c` and `fire_init_threshold` are their starting values (both learned)."""

    model_type = "posenc_fire"
    variant = "fire"

    def __init__(
        self, fire_hidden_size: int = 32, fire_init_c: float = 0.1, fire_init_threshold: float = 512.0, **kwargs
    ):
        require_whole_number("fire_hidden_size", fire_hidden_size)
        require_finite_non_negative("fire_init_c", fire_init_c)
        require_finite_non_negative("fire_init_threshold", fire_init_threshold)
        self.fire_hidden_size = fire_hidden_size
        self.fire_init_c = fire_init_c
        self.fire_init_threshold = fire_init_threshold
        super().__init__(**kwargs)


ATTENUATION_FORMS = ("logit", "probability", "learned_table")


class PosEncAttenuatedConfig(PosEncConfig):
    """The paper's Gaussian attenuation: `attenuation_strength` (w) and `attenuation_symmetry` (s), each a float or
    one value per head; `attenuation_per_head` and `attenuation_learnable` as named; `attenuation_form` is "logit"
    (the penalty -w d^2 added to the logits), "probability" or "learned_table" (the seed repository's two forms)."""

    model_type = "posenc_attenuated"
    variant = "attenuated"

    def __init__(
        self,
        attenuation_strength: float | list[float] = 0.05,
        attenuation_symmetry: float | list[float] = 1.0,
        attenuation_per_head: bool = False,
        attenuation_learnable: bool = False,
        attenuation_form: str = "logit",
        **kwargs,
    ):
        require_choice("attenuation_form", attenuation_form, ATTENUATION_FORMS)
        ratios = attenuation_symmetry if isinstance(attenuation_symmetry, (list, tuple)) else [attenuation_symmetry]
        if attenuation_form == "learned_table" and any(ratio != 1 for ratio in ratios):
            raise ValueError(
                "attenuation_form='learned_table' is a table of |i - j|, symmetric by construction, so "
                f"attenuation_symmetry must be 1; got {attenuation_symmetry!r}. Use the 'logit' form for s != 1."
            )
        require_bool("attenuation_per_head", attenuation_per_head)
        require_bool("attenuation_learnable", attenuation_learnable)
        require_finite_non_negative("attenuation_strength (w)", attenuation_strength)
        require_finite_non_negative("attenuation_symmetry (s)", attenuation_symmetry)
        self.attenuation_strength = attenuation_strength
        self.attenuation_symmetry = attenuation_symmetry
        self.attenuation_per_head = attenuation_per_head
        self.attenuation_learnable = attenuation_learnable
        self.attenuation_form = attenuation_form
        super().__init__(**kwargs)
        for name, value in (
            ("attenuation_strength", attenuation_strength),
            ("attenuation_symmetry", attenuation_symmetry),
        ):
            if isinstance(value, (list, tuple)) and len(value) not in (1, self.num_attention_heads):
                raise ValueError(
                    f"{name} has {len(value)} values but the model has {self.num_attention_heads} heads; give one "
                    "value per head or a single float."
                )


class PosEncForgettingConfig(PosEncConfig):
    """The two-sided forget gate of the Forgetting Transformer: `forgetting_tied_gates` (one gate for both sides,
    symmetric; False: a left and a right gate) and `forgetting_gate_bias_init` (the gates' starting bias b:
    sigmoid(b) is the gate of a token whose content term is zero)."""

    model_type = "posenc_forgetting"
    variant = "forgetting"

    def __init__(self, forgetting_tied_gates: bool = True, forgetting_gate_bias_init: float = 5.0, **kwargs):
        require_bool("forgetting_tied_gates", forgetting_tied_gates)
        bias_init = forgetting_gate_bias_init
        if isinstance(bias_init, bool) or not isinstance(bias_init, (int, float)) or not math.isfinite(bias_init):
            raise ValueError(
                f"forgetting_gate_bias_init must be a finite number (5: gates start at 0.993); got {bias_init!r}."
            )
        self.forgetting_tied_gates = forgetting_tied_gates
        self.forgetting_gate_bias_init = forgetting_gate_bias_init
        super().__init__(**kwargs)


class PosEncCopeConfig(PosEncConfig):
    """Bidirectional contextual position (CoPE): `cope_max_positions` (P: embeddings per side; gated counts are
    clamped to P - 1) and `cope_shared_table` (one table for keys on both sides, a symmetric counting rule; False: a
    left and a right table). P = 64 by default: a count grows by at most one per token and by about one half at
    initialisation (gates near sigmoid(0)), so 64 rows cover the first 64 to 128 tokens on each side (the reach
    of Shaw's default clipping distance, 64), while the gathered [B, H, T, 2P] products stay below the [B, H, T, T]
    logits at BERT's 512 tokens (the released code's default, block size + 1, would double them)."""

    model_type = "posenc_cope"
    variant = "cope"

    def __init__(self, cope_max_positions: int = 64, cope_shared_table: bool = False, **kwargs):
        value = cope_max_positions
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(
                f"cope_max_positions must be a whole number >= 2 (the position embeddings per side; counts are "
                f"clamped to cope_max_positions - 1; 64 is the default); got {value!r}."
            )
        require_bool("cope_shared_table", cope_shared_table)
        self.cope_max_positions = cope_max_positions
        self.cope_shared_table = cope_shared_table
        super().__init__(**kwargs)


class PosEncSandwichConfig(PosEncConfig):
    """Sandwich's parameter-free bias: sums of cosines of `sandwich_dimension` / 2 sinusoidal frequencies (an even
    number >= 2; None: the head dimension, as NVIDIA NeMo passes)."""

    model_type = "posenc_sandwich"
    variant = "sandwich"

    def __init__(self, sandwich_dimension: int | None = None, **kwargs):
        if sandwich_dimension is not None:
            require_whole_number("sandwich_dimension", sandwich_dimension, minimum=2)
            if sandwich_dimension % 2:
                raise ValueError(
                    f"sandwich_dimension must be even (it pairs sines and cosines); got {sandwich_dimension}."
                )
        self.sandwich_dimension = sandwich_dimension
        super().__init__(**kwargs)
        if sandwich_dimension is None and self.head_dim % 2:
            raise ValueError(
                f"sandwich_dimension defaults to the head dimension, {self.head_dim}, which is odd; set "
                "sandwich_dimension to an even number (for example 64) or choose an even head dimension."
            )


class PosEncComropeConfig(PosEncConfig):
    """Learned commuting rotations (ComRoPE / LieRE in one dimension): each layer and head rotates its queries and keys
    at position p by exp(p A), A block-diagonal and skew-symmetric with blocks of `comrope_block_size` (which must
    divide the head dimension), learned from A = P - P^T with P ~ N(0, `comrope_init_std`)."""

    model_type = "posenc_comrope"
    variant = "comrope"

    def __init__(self, comrope_block_size: int = 4, comrope_init_std: float = 0.07, **kwargs):
        require_whole_number("comrope_block_size", comrope_block_size, minimum=2)
        std = comrope_init_std
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0 < std < math.inf:
            raise ValueError(f"comrope_init_std must be a finite number > 0 (default 0.07); got {std!r}.")
        self.comrope_block_size = comrope_block_size
        self.comrope_init_std = comrope_init_std
        super().__init__(**kwargs)
        if self.head_dim % comrope_block_size:
            divisor = largest_divisor_up_to(self.head_dim, comrope_block_size)
            raise ValueError(
                f"comrope_block_size={comrope_block_size} does not divide the head dimension hidden_size/"
                f"num_attention_heads = {self.head_dim}; choose a block size that divides it (for example "
                f"{divisor if divisor > 1 else self.head_dim}; 2 is RoPE with learned frequencies)."
            )


VARIANTS: dict[str, type[PosEncConfig]] = {
    config.variant: config
    for config in (
        PosEncNopeConfig,
        PosEncLearnedConfig,
        PosEncSinusoidalConfig,
        PosEncShawConfig,
        PosEncHuangConfig,
        PosEncT5Config,
        PosEncAlibiConfig,
        PosEncRopeConfig,
        PosEncDebertaConfig,
        PosEncTupeConfig,
        PosEncKerpleConfig,
        PosEncFireConfig,
        PosEncAttenuatedConfig,
        PosEncForgettingConfig,
        PosEncCopeConfig,
        PosEncSandwichConfig,
        PosEncComropeConfig,
    )
}

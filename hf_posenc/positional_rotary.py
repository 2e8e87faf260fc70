"""The rotate route: RoPE and its frequency family (partial rotation, p-RoPE, the base theta, and the context-extension
scalings of transformers' `modeling_rope_utils`).

Hub code: copied next to every saved model (positional.py imports it), so it imports only torch and transformers.
"""

import torch
from transformers import PreTrainedConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from .positional_base import PositionalEncoding


class RotaryEncoding(PositionalEncoding):
    """RoPE (Su et al. 2021): rotates each pair of query/key dimensions by an angle proportional to the position,
    so q_i . k_j depends on i - j only. Route: rotate. Half-split layout (Llama, GPT-NeoX): dimension k pairs with
    k + r/2, r being the rotated dimensions. Parameters:
      `rope_theta`                  the base of the frequencies theta_k = rope_theta^(-2k/r);
      `rope_partial_rotary_factor`  the fraction of each head's dimensions that rotate (GPT-NeoX's
                                    `partial_rotary_factor`): the first r = int(head_dim * factor) dimensions rotate,
                                    with frequencies spread over r; the others carry no position;
      `rope_frequency_fraction`     p-RoPE's p (Barbero et al. 2025): every dimension pair keeps its usual frequency,
                                    but only the fraction p with the highest frequencies rotate; the lowest 1 - p
                                    get frequency 0 (no rotation). p = 1 is RoPE, p = 0 is NoPE;
      `rope_context_scaling`        a context-extension scaling in transformers' `rope_parameters` form ("linear",
                                    "dynamic", "yarn", "longrope", "llama3"), normally set on a copy for evaluation
                                    (`hf-posenc extrapolate --rope_scaling`).
    Any setting other than plain RoPE takes its frequencies (and the cos/sin factor of yarn and longrope) from
    transformers' ROPE_INIT_FUNCTIONS; plain RoPE keeps the formula it always had (within 1 ulp of transformers'), so
    saved models compute bit for bit what they computed. Symmetric in the positional factor (cos is even) but the
    sine terms pair with content, so not symmetric by construction."""

    name = "rope"
    route = "rotate"
    paper = "Su et al. 2021, RoFormer: enhanced transformer with rotary position embedding"
    symmetric = False

    def __init__(self, config):
        super().__init__(config)
        self.rope_theta = config.rope_theta
        self.partial_rotary_factor = getattr(config, "rope_partial_rotary_factor", 1.0)
        self.frequency_fraction = getattr(config, "rope_frequency_fraction", 1.0)
        self.context_scaling = getattr(config, "rope_context_scaling", None)
        self.rotary_dim = int(self.head_dim * self.partial_rotary_factor)
        self.plain = self.rotary_dim == self.head_dim and self.frequency_fraction == 1 and not self.context_scaling
        self.transformers_config = None if self.plain else self.rope_config()

    def rope_config(self) -> PreTrainedConfig:
        """The settings as the transformers config that ROPE_INIT_FUNCTIONS read. Its max_position_embeddings is the
        length the scaling extends from (`original_max_position_embeddings`, else the model's): dynamic NTK starts
        scaling beyond it."""
        scaling = dict(self.context_scaling or {"rope_type": "linear", "factor": 1.0})
        if self.frequency_fraction < 1 and scaling["rope_type"] == "linear":
            scaling["rope_type"] = "proportional"  # transformers' p-RoPE, which also takes linear's factor
        original_length = scaling.get("original_max_position_embeddings", self.max_position_embeddings)
        if scaling["rope_type"] == "dynamic":
            scaling.pop("original_max_position_embeddings", None)
        # proportional reads partial_rotary_factor as p; the others as the rotated fraction.
        rotated = self.frequency_fraction if scaling["rope_type"] == "proportional" else self.partial_rotary_factor
        rope_config = PreTrainedConfig()
        rope_config.hidden_size = self.num_heads * self.head_dim
        rope_config.num_attention_heads = self.num_heads
        rope_config.head_dim = self.head_dim
        rope_config.max_position_embeddings = original_length
        rope_config.rope_parameters = {
            **scaling,
            "rope_theta": float(self.rope_theta),
            "partial_rotary_factor": rotated,
        }
        return rope_config

    def rotation_parameters(self, seq_len: int | None = None, device=None) -> tuple[torch.Tensor, float]:
        """The float32 inverse frequencies of the rotated pairs and the factor that multiplies cos and sin."""
        if self.plain:
            exponents = -torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32) / self.head_dim
            return self.rope_theta**exponents, 1.0
        rope_type = self.transformers_config.rope_parameters["rope_type"]
        inverse_frequencies, attention_factor = ROPE_INIT_FUNCTIONS[rope_type](
            self.transformers_config, device, seq_len=seq_len
        )
        if self.frequency_fraction < 1 and rope_type != "proportional":
            # p-RoPE on top of a scaling: the scaled frequencies, the lowest pairs set to zero as proportional does.
            kept = int(self.frequency_fraction * self.head_dim // 2)
            inverse_frequencies = torch.cat((inverse_frequencies[:kept], inverse_frequencies[kept:] * 0))
        return inverse_frequencies.float(), float(attention_factor)

    def inverse_frequencies(self, seq_len: int | None = None) -> torch.Tensor:
        """The float32 [rotary_dim / 2] angles per position that the model uses, on the CPU: entry k rotates the pair of
        dimensions (k, k + rotary_dim / 2) of every head, highest frequency first. With p-RoPE the removed pairs are
        zeros (length head_dim / 2); with partial rotation only the rotated pairs are listed (dimensions rotary_dim
        to head_dim - 1 never rotate). A scaling is included; "dynamic" and "longrope" depend on the sequence length
        (`seq_len`; None: a length within the original one)."""
        return self.rotation_parameters(seq_len, "cpu")[0]

    def layer_context(self, seq_len: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The [T, rotary_dim] cosines and sines of the rotation angles (times yarn's or longrope's factor)."""
        inverse_frequencies, attention_factor = self.rotation_parameters(seq_len, device)
        angles = torch.arange(seq_len, device=device, dtype=torch.float32)[:, None] * inverse_frequencies
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos(), angles.sin()
        if attention_factor != 1.0:
            cos, sin = cos * attention_factor, sin * attention_factor
        return cos.to(dtype), sin.to(dtype)

    def context_at_positions(self, context, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The [B, 1, T, rotary_dim] cosines and sines at each token's position in its document."""
        return tuple(table[position_ids][:, None] for table in context)

    def document_restart_problem(self) -> str | None:
        scaling = (self.context_scaling or {}).get("rope_type")
        if scaling in ("dynamic", "longrope"):
            return f"its '{scaling}' context scaling picks the frequencies from the length of the whole sequence"
        return None

    def rotate(self, query: torch.Tensor, key: torch.Tensor, context) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = context
        if self.rotary_dim == self.head_dim:
            return query * cos + rotate_half(query) * sin, key * cos + rotate_half(key) * sin
        rotated = []
        for states in (query, key):
            moving, fixed = states[..., : self.rotary_dim], states[..., self.rotary_dim :]
            rotated.append(torch.cat((moving * cos + rotate_half(moving) * sin, fixed), dim=-1))
        return rotated[0], rotated[1]


def rotate_half(states: torch.Tensor) -> torch.Tensor:
    first, second = states.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)

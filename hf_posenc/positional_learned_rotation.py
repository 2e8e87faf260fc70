"""The rotate route with learned rotations: ComRoPE (Yu et al. 2025) and LieRE (Ostmeier et al. 2025) in one
dimension. Each position p turns a head's queries and keys by R(p) = exp(p A), A a learned skew-symmetric generator;
all R(p) of a head share A, so they commute and R(i)^T R(j) = exp((j - i) A): the score depends on j - i only.

Hub code: copied next to every saved model (positional.py imports it), so it imports only torch and transformers.
"""

import torch
from torch import nn
from transformers import initialization as init

from .positional_base import PositionalEncoding


class LearnedCommutingRotation(PositionalEncoding):
    """Learned commuting rotations, ComRoPE (Yu et al. 2025) and LieRE (Ostmeier et al. 2025) for one axis of
    positions: layer l and head h rotate their query and key at position p by R(p) = exp(p A_lh), with
    A_lh = blockdiag(P_1 - P_1^T, ..., P_m - P_m^T), m = head_dim / b blocks of b x b (`comrope_block_size`), so the
    score q_i^T R(i)^T R(j) k_j = q_i^T exp((j - i) A_lh) k_j is purely relative. R is orthogonal (A is skew-symmetric)
    and computed once per forward for every layer, head and position with torch.linalg.matrix_exp on b x b blocks.
    Parameters, as the authors' code (Longin-Yu/ComRoPE, `model.py`) builds them: one P per layer (each attention
    module owns its own), per head and per block, drawn from N(0, `comrope_init_std`), stored whole (A is P - P^T, so
    only its antisymmetric part acts). With one axis, the code's ComRoPE-AP and LieRE generators are this same block
    matrix and ComRoPE-LD multiplies it by one more learned scalar per block, which changes nothing one axis could not
    learn. Choices where one axis of text departs from 2-D images (docs/variants.md): positions are token indices
    0..T-1, not scaled into [0, 1] by the image side; `comrope_init_std` (0.07, about 1/14) is the reference's
    N(0, 1) times the step 1/14 between two patch positions of a 224-pixel image cut into 16-pixel patches, so one
    token turns as one patch does there; `comrope_block_size` defaults to 4 (the reference config's 2 is RoPE with
    learned frequencies: a 2 x 2 generator only turns a plane). Route: rotate. Not symmetric by construction (the
    score pairs content with exp((j - i) A), which is not even in j - i)."""

    name = "comrope"
    route = "rotate"
    paper = (
        "Yu et al. 2025, ComRoPE: scalable and robust rotary position embedding parameterized by trainable commuting "
        "angle matrices; Ostmeier et al. 2025, LieRE: Lie rotational positional encodings"
    )
    symmetric = False
    per_layer_context = True

    def __init__(self, config):
        super().__init__(config)
        self.block_size = config.comrope_block_size
        self.num_blocks = self.head_dim // self.block_size
        self.init_std = config.comrope_init_std
        self.generator_weights = nn.Parameter(
            torch.empty(config.num_hidden_layers, self.num_heads, self.num_blocks, self.block_size, self.block_size)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.generator_weights, std=self.init_std)

    def generators(self) -> torch.Tensor:
        """[L, H, blocks, b, b] skew-symmetric generators A = P - P^T."""
        return self.generator_weights - self.generator_weights.transpose(-1, -2)

    def rotations(self, positions: torch.Tensor, dtype) -> torch.Tensor:
        """[L, H, P, blocks, b, b] rotations exp(p A) at each of the P `positions`, in `dtype`. The exponential runs in
        float32 (float64 when asked): matrix_exp has no half-precision kernel on every device, and R must stay
        orthogonal to the precision the scores are read at."""
        compute_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        generators = self.generators().to(compute_dtype)[:, :, None]
        scaled = positions.to(compute_dtype)[:, None, None, None] * generators
        return torch.linalg.matrix_exp(scaled).to(dtype)

    def layer_context(self, seq_len: int, device, dtype) -> torch.Tensor:
        """[L, H, T, blocks, b, b]: every layer's rotation of every head at positions 0..T-1; layer l reads item l."""
        return self.rotations(torch.arange(seq_len, device=device), dtype)

    def context_at_positions(self, context, position_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """For each layer, its rotation table and the [B, T] positions of the tokens: `rotate` gathers each token's
        rotations for one layer at a time, so the B x T gathered tables of all layers are never held at once."""
        return [(table, position_ids) for table in context]

    def rotate(self, query: torch.Tensor, key: torch.Tensor, context) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(context, tuple):
            table, position_ids = context
            rotation = table[:, position_ids]  # [H, B, T, blocks, b, b]: each token's rotation at its position
            equation = "hbtnij,bhtnj->bhtni"
        else:
            rotation, equation = context, "htnij,bhtnj->bhtni"
        rotation = rotation.to(query.dtype)
        blocks = (self.num_blocks, self.block_size)
        return tuple(
            torch.einsum(equation, rotation, states.unflatten(-1, blocks)).flatten(-2) for states in (query, key)
        )

"""FlexAttention for the bias route: the positional bias added score by score from a small per-head table indexed by
the distance i - j (`PositionalEncoding.bias_by_distance`), padding and document boundaries as a block mask, so no
[B, H, T, T] (nor [H, T, T]) tensor is built. The encoder asks `flex_attention_bias` once per forward; None sends it
back to the dense float mask of scaled_dot_product_attention (`PosEncModel.attention_bias`), which stays the path
wherever FlexAttention cannot run or give the same numbers.

When it runs:
  - requested: `attn_implementation="flex_attention"`;
  - automatic: with the default `"sdpa"`, on CUDA only (FlexAttention's backward does not run on the CPU);
  - and only if the encoding gives a distance table (t5, alibi, kerple, sandwich, attenuated's logit and
    learned-table forms: a bias of i - j alone), no attention weights are asked for (they need eager attention), the
    attention dropout is off or the model is in eval mode (FlexAttention has no dropout), on the CPU autograd is off
    (`torch.no_grad()`: the CPU kernel has a forward only), and on CUDA the head dimension is at least 16.
A request it cannot honour falls back to the dense path with a one-line warning, not an error: the fallback gives the
same outputs, and a study that loads every variant with one setting keeps running.

The dense path shifts each query's bias to a maximum of 0 over the keys it sees and floors it at -50
(`PosEncModel.floor_bias`); this path adds the table as it is. The shift does not change a softmax. The floor only
raises keys already weighted below e^-50 of the row's largest weight, far below float32 resolution next to it; it
exists because exp() of logits near -90 gives denormals that slow CPU attention, which a GPU kernel does not suffer.
A query that sees no key at all (a padded token whose document holds only padding) gets a zero output here and an
average of the values on the dense path; real tokens never read it.

Hub code: copied next to every saved model (modeling_posenc.py imports it), so it imports only torch and transformers.
"""

import functools

import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention
from transformers.utils import logging

logger = logging.get_logger(__name__)

FLEX_ATTENTION = "flex_attention"


@functools.cache
def compiled_flex_attention():
    """One compiled FlexAttention for the process: without torch.compile it materialises the scores it exists to
    avoid. Compiled once; a new score_mod closure of the same code with tables of the same shape reuses it."""
    return torch.compile(flex_attention)


class DistanceBiasAttention:
    """What each layer needs to run FlexAttention with a distance bias: the [H, 2T - 1] table (or [L, H, 2T - 1], one
    per layer, indexed by layer like the dense per-layer bias) and the block mask of padding and documents (None when
    every query sees every key)."""

    def __init__(self, table: torch.Tensor, block_mask):
        # Contiguous, so that every encoding's table has the same layout and reuses one compiled kernel.
        self.table = table.contiguous()
        self.block_mask = block_mask

    def __getitem__(self, layer_index: int) -> "DistanceBiasAttention":
        return DistanceBiasAttention(self.table[layer_index], self.block_mask)

    def attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
        """Attention output [B, H, T, d]: softmax(q.k * scale + table[h, i - j + T - 1]) over the visible keys."""
        table, offset = self.table, query.shape[-2] - 1

        def add_distance_bias(score, batch_index, head_index, query_index, key_index):
            return score + table[head_index, query_index - key_index + offset]

        kernel = flex_attention if torch.compiler.is_compiling() else compiled_flex_attention()
        return kernel(query, key, value, score_mod=add_distance_bias, block_mask=self.block_mask, scale=scale)


def document_segments(document_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] index of each token's document: a new document starts wherever the id changes (as `document_layout`)."""
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    return starts.cumsum(-1)


def visibility_block_mask(
    real: torch.Tensor | None, document_ids: torch.Tensor | None, batch: int, seq_len: int, device
):
    """The block mask of the keys each query may see: real keys (not padding) of its own document; None when every
    query sees every key, which lets the kernel skip masking."""
    if real is None and document_ids is None:
        return None
    segments = None if document_ids is None else document_segments(document_ids)

    def visible(batch_index, head_index, query_index, key_index):
        seen = True if real is None else real[batch_index, key_index]
        if segments is not None:
            seen = seen & (segments[batch_index, query_index] == segments[batch_index, key_index])
        return seen

    # Compiled on CUDA so that building the mask does not materialise [B, T, T] booleans at long lengths.
    return create_block_mask(visible, batch, None, seq_len, seq_len, device=device, _compile=device.type == "cuda")


def choose_attention_kernel(
    model, device: torch.device, output_attentions: bool, has_distance_table: bool
) -> tuple[str, str | None]:
    """The kernel of this forward, "flex_attention", "sdpa" or "eager", and why FlexAttention was not chosen where
    `attn_implementation="flex_attention"` asked for it (None otherwise). `model` is the encoder (PosEncModel);
    `has_distance_table` says whether its encoding gave `bias_by_distance`. Builds no tensor, so the choice can be
    checked for a device this machine lacks."""
    requested = model.config._attn_implementation == FLEX_ATTENTION
    position = model.position
    if output_attentions or position.route == "score" or model.config._attn_implementation == "eager":
        reason = (
            f"the '{position.name}' encoding's position scores read queries and keys (score route), which eager "
            "attention computes"
            if position.route == "score"
            else "attention weights were requested (output_attentions), which only eager attention returns"
        )
        return "eager", reason if requested else None
    if not requested and not (model.config._attn_implementation == "sdpa" and device.type == "cuda"):
        return "sdpa", None
    if position.route != "bias":
        reason = f"the '{position.name}' encoding ({position.route} route) adds no bias to attention"
    elif model.training and model.config.attention_probs_dropout_prob > 0:
        reason = (
            f"FlexAttention has no attention dropout (attention_probs_dropout_prob="
            f"{model.config.attention_probs_dropout_prob} in training); set it to 0 to train on FlexAttention"
        )
    elif device.type != "cuda" and torch.is_grad_enabled():
        reason = "on the CPU FlexAttention runs forward only; run under torch.no_grad(), or on CUDA"
    elif device.type == "cuda" and model.config.head_dim < 16:
        reason = (
            f"FlexAttention's CUDA kernel needs a head dimension of at least 16; this model's is "
            f"{model.config.head_dim}"
        )
    elif not has_distance_table:
        reason = f"the '{position.name}' encoding's bias is not a function of the distance i - j alone"
    else:
        return FLEX_ATTENTION, None
    return "sdpa", reason if requested else None


def flex_attention_bias(model, real, document_ids, batch: int, seq_len: int, device, output_attentions: bool):
    """The `DistanceBiasAttention` every layer uses instead of the dense float mask, or None for the other kernels
    (`choose_attention_kernel`). A request for FlexAttention that cannot be honoured gets a one-line warning."""
    implementation = model.config._attn_implementation
    candidate = implementation == FLEX_ATTENTION or (implementation == "sdpa" and device.type == "cuda")
    considered = candidate and model.position.route == "bias"  # else no table is built: the CPU default costs nothing
    table = model.position.bias_by_distance(seq_len, device) if considered else None
    kernel, reason = choose_attention_kernel(model, device, output_attentions, table is not None)
    if reason is not None:
        logger.warning_once(
            f"attn_implementation='flex_attention' runs on {kernel} instead, with the same results: {reason}."
        )
    if kernel != FLEX_ATTENTION:
        return None
    return DistanceBiasAttention(table, visibility_block_mask(real, document_ids, batch, seq_len, device))

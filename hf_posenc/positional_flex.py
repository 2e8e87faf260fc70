"""FlexAttention for distance biases and distance-indexed scores: the positional term added score by score, padding
and document boundaries as a block mask, so no [B, H, T, T] (nor [H, T, T]) tensor is built. Two forms of position qualify:
  - the bias route's small per-head table indexed by the distance i - j (`PositionalEncoding.bias_by_distance`:
    t5, alibi, kerple, sandwich, attenuated's logit and learned-table forms);
  - the score route's per-(query, distance) tables (`RelativeScoreEncoding.relative_scores`: shaw, huang and
    deberta, the query's and the key's dot products with the relative embeddings, [B, H, T, R] with R the table's
    rows, read by each score's distance);
and, for the encodings that add nothing to the scores (none, embed and rotate routes), packed documents
(`document_ids`): the block mask alone, which skips the blocks across documents where SDPA would need a dense
[B, 1, T, T] mask.
The encoder asks `flex_attention_plan` once per forward; None sends it back to SDPA with the dense float mask
(`PosEncModel.attention_bias`) or to eager attention for the score route, which stay the path wherever FlexAttention
cannot run or give the same numbers.

When it runs:
  - requested: `attn_implementation="flex_attention"`;
  - automatic: with the default `"sdpa"`, on CUDA only (FlexAttention's backward does not run on the CPU);
  - and only if the encoding has one of the two forms above, no attention weights are asked for (they need eager
    attention), the attention dropout is off or the model is in eval mode (FlexAttention has no dropout), on the CPU
    autograd is off (`torch.no_grad()`: the CPU kernel has a forward only), and on CUDA the head dimension is at
    least 16.
A request it cannot honour falls back to the default path with a one-line warning, not an error: the fallback gives
the same outputs, and a study that loads every variant with one setting keeps running.

The dense path shifts each query's bias to a maximum of 0 over the keys it sees and floors it at -50
(`PosEncModel.floor_bias`); this path adds the table as it is. The shift does not change a softmax. The floor only
raises keys already weighted below e^-50 of the row's largest weight, far below float32 resolution next to it; it
exists because exp() of logits near -90 gives denormals that slow CPU attention, which a GPU kernel does not suffer.
A query that sees no key at all (a padded token whose document holds only padding) gets a zero output here and an
average of the values on the dense path; real tokens never read it.

Hub code: copied next to every saved model (modeling_posenc.py imports it), so it imports only torch and transformers.
"""

import functools
import itertools

import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention
from transformers.utils import logging

from .positional_base import RelativeScoreEncoding, RelativeScores

logger = logging.get_logger(__name__)

FLEX_ATTENTION = "flex_attention"


def attend_with_distance_table(query, key, value, table, block_mask, scale: float) -> torch.Tensor:
    """softmax(q.k * scale + table[h, i - j + T - 1]) over the visible keys: the dense bias's values, added after the
    scaling as the dense bias is."""
    offset = query.shape[-2] - 1

    def add_distance_bias(score, batch_index, head_index, query_index, key_index):
        return score + table[head_index, query_index - key_index + offset]

    return flex_attention(query, key, value, score_mod=add_distance_bias, block_mask=block_mask, scale=scale)


def attend_with_block_mask(query, key, value, block_mask, scale: float) -> torch.Tensor:
    """softmax(q.k * scale) over the visible keys: packed documents for an encoding that adds nothing to the scores."""
    return flex_attention(query, key, value, block_mask=block_mask, scale=scale)


def attend_with_query_scores(query, key, value, query_scores, query_rows, block_mask, scale: float) -> torch.Tensor:
    """softmax(q.k * scale + query_scores[b, h, i, query_rows[i - j + T - 1]]) over the visible keys; the scores
    come already scaled (`FlexAttentionPlan.attend`)."""
    offset = query.shape[-2] - 1
    query_term = flat_lookup(query_scores, query_rows)

    def add_query_term(score, batch_index, head_index, query_index, key_index):
        return score + query_term(batch_index, head_index, query_index, query_index - key_index + offset)

    return flex_attention(query, key, value, score_mod=add_query_term, block_mask=block_mask, scale=scale)


def attend_with_query_and_key_scores(
    query, key, value, query_scores, query_rows, key_scores, key_rows, block_mask, scale: float
) -> torch.Tensor:
    """As `attend_with_query_scores`, plus key_scores[b, h, j, key_rows[i - j + T - 1]]."""
    offset = query.shape[-2] - 1
    query_term, key_term = flat_lookup(query_scores, query_rows), flat_lookup(key_scores, key_rows)

    def add_both_terms(score, batch_index, head_index, query_index, key_index):
        distance = query_index - key_index + offset
        return (
            score
            + query_term(batch_index, head_index, query_index, distance)
            + key_term(batch_index, head_index, key_index, distance)
        )

    return flex_attention(query, key, value, score_mod=add_both_terms, block_mask=block_mask, scale=scale)


def flat_lookup(scores: torch.Tensor, rows: torch.Tensor):
    """The entry (b, h, t, rows[distance]) of [B, H, T, R] scores, read from a flat view: this torch's CPU kernel
    indexes a captured [B, H, T, R] tensor by the key index out of bounds (it takes the key's block for the query's),
    which an index into one dimension does not meet."""
    _, heads, seq_len, table_size = scores.shape
    flat = scores.reshape(-1)

    def lookup(batch_index, head_index, token_index, distance):
        return flat[((batch_index * heads + head_index) * seq_len + token_index) * table_size + rows[distance]]

    return lookup


@functools.cache
def compiled(attend):
    """`attend` compiled once for the process: FlexAttention without torch.compile materialises the scores it exists
    to avoid. One compiled function per form, so that each form has its own budget of recompilations (a study that
    runs every variant in one process would exhaust a shared one and fall back to the unfused kernel). Static
    shapes: a training run keeps its shapes, and this torch's CPU kernel fails to build once a size has become
    symbolic (as automatic dynamic shapes make it at the second size)."""
    return torch.compile(attend, dynamic=False)


class FlexAttentionPlan:
    """What each layer needs to run FlexAttention: the block mask of padding and documents (None when every query
    sees every key) and, for a distance bias, the [H, 2T - 1] table (or [L, H, 2T - 1], one per layer, indexed by
    layer like the dense per-layer bias). The score route brings its tables to `attend` layer by layer; the none,
    embed and rotate routes run with the block mask alone (packed documents)."""

    def __init__(self, block_mask, table: torch.Tensor | None = None):
        # Contiguous, so that every encoding's table has the same layout and reuses one compiled kernel.
        self.table = None if table is None else table.contiguous()
        self.block_mask = block_mask

    def __getitem__(self, layer_index: int) -> "FlexAttentionPlan":
        return FlexAttentionPlan(self.block_mask, None if self.table is None else self.table[layer_index])

    def attend(self, query, key, value, scale: float, relative_scores: RelativeScores | None = None) -> torch.Tensor:
        """Attention output [B, H, T, d] with the distance table, or with the relative scores (scaled with q.k, as
        eager attention does)."""
        if self.table is not None:
            form, tables = attend_with_distance_table, (self.table,)
        elif relative_scores is None:
            form, tables = attend_with_block_mask, ()
        # Relative scores are scaled here: inside the score_mod, a scale that differs between models (DeBERTa's
        # 1/sqrt(3d)) became a graph input that this torch's CPU kernel failed to lower.
        elif relative_scores.key_scores is None:
            form = attend_with_query_scores
            tables = (relative_scores.query_scores * scale, relative_scores.query_rows)
        else:
            form = attend_with_query_and_key_scores
            query_scores, query_rows, key_scores, key_rows = relative_scores
            tables = (query_scores * scale, query_rows, key_scores * scale, key_rows)
        attend = form if torch.compiler.is_compiling() else compiled(form)
        return attend(query, key, value, *tables, self.block_mask, scale)


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
    # Both tensors always, so that a block mask has one form (one compiled kernel) whatever the inputs hold.
    if real is None:
        real = torch.ones(batch, seq_len, dtype=torch.bool, device=device)
    segments = torch.zeros_like(real, dtype=torch.long) if document_ids is None else document_segments(document_ids)

    def visible(batch_index, head_index, query_index, key_index):
        same_document = segments[batch_index, query_index] == segments[batch_index, key_index]
        return real[batch_index, key_index] & same_document

    # Compiled on CUDA so that building the mask does not materialise [B, T, T] booleans at long lengths.
    return create_block_mask(visible, batch, None, seq_len, seq_len, device=device, _compile=device.type == "cuda")


def has_flex_form(position, packed_documents: bool = False) -> bool:
    """Whether FlexAttention can compute this encoding's attention: a distance table or distance-indexed scores, or,
    for an encoding that adds nothing to the scores (none, embed and rotate routes), packed documents to mask."""
    if position.route in ("none", "embed", "rotate"):
        return packed_documents
    if isinstance(position, RelativeScoreEncoding):
        return True
    # A two-token table, built where the encoding's tensors are (a model on the GPU has its slopes there).
    held = next(itertools.chain(position.parameters(), position.buffers()), None)
    return position.bias_by_distance(2, "cpu" if held is None else held.device) is not None


def choose_attention_kernel(
    model, device: torch.device, output_attentions: bool, has_flex_form: bool
) -> tuple[str, str | None]:
    """The kernel of this forward, "flex_attention", "sdpa" or "eager", and why FlexAttention was not chosen where
    `attn_implementation="flex_attention"` asked for it (None otherwise). `model` is the encoder (PosEncModel);
    `has_flex_form` is `has_flex_form(encoding, packed_documents)`. Builds no tensor, so the choice can be checked
    for a device this machine lacks."""
    requested = model.config._attn_implementation == FLEX_ATTENTION
    position = model.position
    default = "eager" if position.route == "score" else "sdpa"
    if output_attentions or model.config._attn_implementation == "eager":
        reason = "attention weights were requested (output_attentions), which only eager attention returns"
        return "eager", reason if requested else None
    if not requested and not (model.config._attn_implementation == "sdpa" and device.type == "cuda"):
        return default, None
    if not has_flex_form and position.route == "bias":
        reason = f"the '{position.name}' encoding's bias is not a function of the distance i - j alone"
    elif not has_flex_form and position.route == "score":
        reason = (
            f"the '{position.name}' encoding's position scores are not relative embeddings looked up by the distance "
            "i - j alone, so eager attention computes them"
        )
    elif not has_flex_form:
        reason = (
            f"the '{position.name}' encoding ({position.route} route) adds nothing to attention scores, and without "
            "packed documents (document_ids) there is no mask for FlexAttention to skip"
        )
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
    else:
        return FLEX_ATTENTION, None
    return default, reason if requested else None


def flex_attention_plan(model, real, document_ids, batch: int, seq_len: int, device, output_attentions: bool):
    """The `FlexAttentionPlan` every layer uses instead of the dense float mask, or None for the other kernels
    (`choose_attention_kernel`). A request for FlexAttention that cannot be honoured gets a one-line warning."""
    implementation = model.config._attn_implementation
    position = model.position
    candidate = implementation == FLEX_ATTENTION or (implementation == "sdpa" and device.type == "cuda")
    # Only a candidate builds the table (the CPU default costs nothing), and the bias route's form is that table.
    table = position.bias_by_distance(seq_len, device) if candidate and position.route == "bias" else None
    if position.route == "bias":
        flex_form = table is not None
    else:
        flex_form = has_flex_form(position, packed_documents=document_ids is not None)
    kernel, reason = choose_attention_kernel(model, device, output_attentions, flex_form)
    if reason is not None:
        logger.warning_once(
            f"attn_implementation='flex_attention' runs on {kernel} instead, with the same results: {reason}."
        )
    if kernel != FLEX_ATTENTION:
        return None
    return FlexAttentionPlan(visibility_block_mask(real, document_ids, batch, seq_len, device), table)

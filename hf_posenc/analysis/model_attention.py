"""Attention read out of a model: on text (`summarize_model`, any Hugging Face encoder) or from position alone
(`position_attention`, hf_posenc models only). The metrics in `hf_posenc.analysis.metrics` take plain tensors;
this module is the one that knows how models hand out their attention."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .metrics import summarize

__all__ = ["model_attentions", "position_attention", "summarize_model"]


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        raise ValueError(f"{type(model).__name__} has no parameters; pass a Hugging Face model.") from None


@torch.no_grad()
def model_attentions(model, batch: Mapping[str, Tensor]) -> tuple[tuple[Tensor, ...], Tensor | None]:
    """The per-layer attentions ``[batch, heads, T, T]`` that `model` gives on `batch` (its tokenized inputs), and
    the batch's ``attention_mask`` (None when it has none: every token is real), run in eval mode without gradients.
    Stock transformers models, whose SDPA path returns no weights, are switched to eager attention for the call;
    train mode and the attention implementation are restored afterwards."""
    if not isinstance(batch, Mapping) or "input_ids" not in batch and "inputs_embeds" not in batch:
        raise ValueError(
            "batch must be a dict of model inputs with input_ids (e.g. dict(tokenizer(texts, padding=True, "
            f"return_tensors='pt'))); got {type(batch).__name__}"
        )
    was_training = model.training
    implementation = getattr(model.config, "_attn_implementation", None)
    device = _model_device(model)
    if device.type == "meta":
        raise ValueError(
            f"{type(model).__name__} is on the meta device (it has shapes but no weights); load its weights "
            "(from_pretrained without device_map='meta') before measuring its attention."
        )
    try:
        model.eval()
        if implementation not in (None, "eager"):
            model.set_attn_implementation("eager")
        inputs = {key: value.to(device) if isinstance(value, Tensor) else value for key, value in batch.items()}
        outputs = model(**inputs, output_attentions=True)
        return outputs.attentions, inputs.get("attention_mask")
    finally:
        if implementation not in (None, "eager"):
            model.set_attn_implementation(implementation)
        model.train(was_training)


def summarize_model(model, batch: Mapping[str, Tensor]) -> dict[str, Any]:
    """`summarize` of the attentions `model` (any Hugging Face encoder) gives on `batch` (its inputs, normally
    with an ``attention_mask``); see `model_attentions` for how the model is run."""
    attentions, attention_mask = model_attentions(model, batch)
    return summarize(attentions, attention_mask)


def position_attention(model, seq_len: int) -> Tensor:
    """The attention each layer and head would give from position alone, without content: the paper's
    "position-wise weight matrices". Returns a row-stochastic float64 tensor [layers, heads, T, T] that
    `locality` and `symmetry` accept, so an encoding can be read without data, even at initialisation.

    - bias route (t5, alibi, kerple, fire, attenuated, tupe): softmax of the positional bias. One bias is shared
      by all layers, so every layer gets the same matrix, unless the encoding has one per layer (`per_layer`).
    - embed route (learned, sinusoidal): softmax((P W_q + b_q)(P W_k + b_k)^T / sqrt(d)) of the position
      vectors P through the first layer's query and key projections (as in Wang and Chen 2020 and Ke et al.
      2021); a single layer, [1, heads, T, T], since deeper layers no longer see P alone.
    - none (nope): uniform rows, the same for every layer.
    - rotate and score routes (rope, shaw, huang, deberta): their positional terms multiply queries or keys, so
      there is no content-free attention to show; ValueError.

    `model` is any hf_posenc model (base, masked LM or classifier).
    """
    encoder = getattr(model, "base_model", model)
    position = getattr(encoder, "position", None)
    if position is None or not hasattr(position, "route"):
        raise ValueError(
            f"position_attention needs an hf_posenc model; {type(model).__name__} has no positional-encoding "
            "module. For any other encoder, measure its attentions on text with summarize()."
        )
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise ValueError(f"seq_len must be an int >= 1 (the number of positions to show); got {seq_len!r}.")
    position.check_length(seq_len)
    num_layers, num_heads = len(encoder.layers), position.num_heads
    device = _model_device(encoder)
    if device.type == "meta":
        raise ValueError(f"{type(model).__name__} is on the meta device (no weights); load its weights first.")
    with torch.no_grad():
        if position.route == "bias":
            scores = position.bias(seq_len, device).double()
            if not position.per_layer:
                scores = scores[None].expand(num_layers, -1, -1, -1)
        elif position.route == "none":
            scores = torch.zeros(num_layers, num_heads, seq_len, seq_len, dtype=torch.float64, device=device)
        elif position.route == "embed":
            vectors = position.embeddings(seq_len, device, torch.float32)
            attention = encoder.layers[0].attention
            projected = attention.query_key_value(vectors).view(seq_len, 3, num_heads, -1)
            queries, keys = projected[:, 0].transpose(0, 1), projected[:, 1].transpose(0, 1)
            scores = (queries @ keys.transpose(-1, -2) * attention.scaling).double()[None]
        else:
            raise ValueError(
                f"The '{position.name}' encoding enters attention through the {position.route} route: its positional "
                "terms multiply queries or keys, so there is no attention from position alone. Measure it on text "
                "with summarize(model(..., output_attentions=True).attentions) instead."
            )
    return torch.softmax(scores, dim=-1)

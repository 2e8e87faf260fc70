"""Attention read out of a model: on text (`summarize_model`, `measure_model`, any Hugging Face encoder) or from
position alone (`position_attention`, hf_posenc models only). The metrics in `hf_posenc.analysis.metrics` take
plain tensors; this module is the one that knows how models hand out their attention, and, for rotary encodings,
their rotated queries and keys (`hf_posenc.analysis.rotary_bands`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from . import rotary_bands
from .metrics import DEFAULT_SYMMETRY_TOLERANCE, measure_attentions
from .summary import AttentionAccumulator

__all__ = ["ModelMeasurement", "measure_model", "model_attentions", "position_attention", "summarize_model"]


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        raise ValueError(f"{type(model).__name__} has no parameters; pass a Hugging Face model.") from None


def model_attentions(model, batch: Mapping[str, Tensor]) -> tuple[tuple[Tensor, ...], Tensor | None]:
    """The per-layer attentions ``[batch, heads, T, T]`` that `model` gives on `batch` (its tokenized inputs), and
    the batch's ``attention_mask`` (None when it has none: every token is real), run in eval mode without gradients.
    Stock transformers models, whose SDPA path returns no weights, are switched to eager attention for the call;
    train mode and the attention implementation are restored afterwards."""
    attentions, attention_mask, _ = _run(model, batch, record_rotary=False)
    return attentions, attention_mask


@torch.no_grad()
def _run(model, batch: Mapping[str, Tensor], record_rotary: bool):
    """model_attentions, plus the rotary band records (None when not measured) as a third value."""
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
        if not record_rotary:
            return model(**inputs, output_attentions=True).attentions, inputs.get("attention_mask"), None
        with rotary_bands.recording(model, inputs.get("attention_mask")) as recorded:
            outputs = model(**inputs, output_attentions=True)
        return outputs.attentions, inputs.get("attention_mask"), recorded
    finally:
        if implementation not in (None, "eager"):
            model.set_attn_implementation(implementation)
        model.train(was_training)


@dataclass
class ModelMeasurement:
    """One batch measured by `measure_model`: the per-matrix values (`measure_attentions`' dict, plus a
    ``"rotary_<band>"`` share [layers, batch, heads] per frequency band for rotary encodings), what the summary
    records beside them, and the attentions and mask they came from."""

    measured: dict[str, Tensor]
    seq_len: int
    details: dict[str, Any] = field(default_factory=dict)
    attentions: tuple[Tensor, ...] = ()
    attention_mask: Tensor | None = None


def measure_model(
    model, batch: Mapping[str, Tensor], special_token_ids: Mapping[str, Any] | None = None
) -> ModelMeasurement:
    """Run `model` on `batch` (see `model_attentions`) and measure its attentions: every metric of `summarize`, the
    attention sinks named in `special_token_ids` (``{"cls": tokenizer.cls_token_id, ...}``, read in the batch's
    ``input_ids``), and for an hf_posenc rotary encoding the share of the logits each frequency band carries."""
    attentions, attention_mask, recorded = _run(model, batch, record_rotary=True)
    measured = measure_attentions(
        attentions, attention_mask, input_ids=batch.get("input_ids"), special_token_ids=special_token_ids
    )
    details: dict[str, Any] = {"tolerance": DEFAULT_SYMMETRY_TOLERANCE}
    if recorded is not None:
        bands, records = recorded
        if len(records) != len(attentions):
            raise RuntimeError(
                f"the rotary encoding was called {len(records)} times for {len(attentions)} layers; the frequency "
                "bands assume one rotation per layer"
            )
        masses = torch.stack(records).cpu()  # [layers, batch, heads, bands]
        shares = masses / masses.sum(dim=-1, keepdim=True)  # 0 / 0 = NaN where every logit is 0: undefined
        for index, name in enumerate(bands.names):
            measured[f"rotary_{name}"] = shares[..., index]
        details["rotary_bands"] = bands.description
    return ModelMeasurement(measured, attentions[0].shape[-1], details, tuple(attentions), attention_mask)


def summarize_model(
    model, batch: Mapping[str, Tensor], special_token_ids: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`summarize` of the attentions `model` (any Hugging Face encoder) gives on `batch` (its inputs, normally
    with an ``attention_mask``), with the attention sinks of `special_token_ids` and, for an hf_posenc rotary
    encoding, its frequency bands; see `measure_model`."""
    result = measure_model(model, batch, special_token_ids)
    accumulator = AttentionAccumulator()
    accumulator.add(result.measured, result.seq_len, result.details)
    return accumulator.summary()


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

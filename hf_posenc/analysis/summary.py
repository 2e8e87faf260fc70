"""The summary of many attention matrices, accumulated batch by batch in bounded memory.

`hf_posenc.analysis.metrics.measure_attentions` measures one batch: a value per layer, sequence and head for each
scalar metric, and a profile per matrix for the distance measurements. `AttentionAccumulator` keeps only sums and
counts of those values per layer and head (per layer and distance for the profiles), so a corpus measured in any
number of batches gives the numbers one batch holding all of it would give (up to float64 rounding of the sums,
about 1e-15): every level of the summary is a mean over sequences of per-sequence values, and a mean is a sum
divided by a count. Undefined values (NaN: a symmetry without mirrored pairs, a sink token a sequence lacks, a
distance it does not reach) are left out of both.

The summary dict is described in `hf_posenc.analysis.metrics.summarize`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..results import json_safe

__all__ = ["PROFILES", "SUMMARY_METRICS", "AttentionAccumulator", "attention_results", "log_bin_ranges"]

# The metrics every summary has (overall, per layer, per head), as its keys name them; sinks and rotary bands are
# added when they can be measured (the summary's "metrics" lists them all).
SUMMARY_METRICS = ("locality", "symmetry", "symmetry_scale_aware")
# The per-matrix profiles, [layers, batch, heads, 2k + 1] centred on distance 0, and where the summary puts them
# (the entry, and the prefix of its "mean" and "per_layer" there).
PROFILES = {
    "distance_profile": ("distance", ""),
    "log_bins": ("distance_bins", ""),
    "log_bins_relative": ("distance_bins", "relative_"),
}


def log_bin_ranges(bins_per_side: int, longest: int | None = None) -> list[list[int]]:
    """The signed distances ``j - i`` each log bin holds, ``[lowest, highest]``: left bins (keys before the query)
    first, then ``[0, 0]``, then right bins; bin ``b >= 1`` holds ``|j - i|`` in ``[2^(b-1), 2^b - 1]``, the last one
    cut at `longest` (the longest distance, T - 1)."""
    right = [[2 ** (b - 1), 2**b - 1] for b in range(1, bins_per_side + 1)]
    if longest is not None:
        right = [[low, min(high, longest)] for low, high in right]
    return [[-high, -low] for low, high in reversed(right)] + [[0, 0]] + right


def _widen(values: Tensor, width: int) -> Tensor:
    """A centred profile [..., w] zero-padded on both sides to [..., width]."""
    pad = (width - values.shape[-1]) // 2
    return torch.nn.functional.pad(values, (pad, pad)) if pad else values


def _nanmean(values: Tensor, dim: int | None = None) -> Tensor:
    # torch.nanmean returns NaN (with no warning) where everything is NaN, which is what we want.
    return torch.nanmean(values) if dim is None else torch.nanmean(values, dim=dim)


def _plain(values: Tensor) -> Any:
    """Tensor -> nested lists of Python floats, NaN -> None (strict JSON has no NaN)."""
    return json_safe(values.detach().cpu().tolist())


def _mean(total: Tensor, count: Tensor) -> Tensor:
    return torch.where(count > 0, total / count.clamp_min(1), math.nan)


class AttentionAccumulator:
    """Sums and counts of per-matrix measurements; `add` one batch at a time, then `summary()`.

    Every batch must come from the same model (same layers, heads and metrics); its sequences may have any padded
    length, and the distance profiles widen to the longest one seen.
    """

    def __init__(self) -> None:
        self.names: tuple[str, ...] | None = None  # the scalar metrics, in the order the summary lists them
        self.num_layers = self.num_heads = 0
        self.sequences = 0
        self.seq_len = 0
        self.sums: dict[str, Tensor] = {}  # [L, H] float64 per scalar metric and profile [L, W]
        self.counts: dict[str, Tensor] = {}
        self.details: dict[str, Any] = {}

    def add(self, measured: Mapping[str, Tensor], seq_len: int, details: Mapping[str, Any] | None = None) -> None:
        """Add one batch: `measured` maps each scalar metric to [layers, batch, heads] float values and each of
        `PROFILES` to [layers, batch, heads, 2k + 1] (NaN where undefined); `seq_len` is the batch's padded length;
        `details` (plain values, e.g. the tolerance) go into the summary as they are."""
        names = tuple(name for name in measured if name not in PROFILES)
        if not names:
            raise ValueError("nothing measured: the batch holds no scalar metric")
        layers, batch, heads = measured[names[0]].shape
        if self.names is None:
            self.names, self.num_layers, self.num_heads = names, layers, heads
        elif names != self.names or (layers, heads) != (self.num_layers, self.num_heads):
            raise ValueError(
                f"this batch has {layers} layers x {heads} heads and metrics {list(names)}, but earlier batches had "
                f"{self.num_layers} x {self.num_heads} and {list(self.names)}; accumulate one model's batches only"
            )
        for name, values in measured.items():
            values = values.detach().to(device="cpu", dtype=torch.float64)
            defined = ~torch.isnan(values)
            # Scalars: mean over the batch per layer and head; profiles: over batch and heads per layer.
            dims = (1,) if name not in PROFILES else (1, 2)
            total = torch.where(defined, values, 0.0).sum(dim=dims)
            count = defined.sum(dim=dims).to(torch.float64)
            if name in self.sums:
                width = max(total.shape[-1], self.sums[name].shape[-1]) if name in PROFILES else None
                if width is not None:
                    total, count = _widen(total, width), _widen(count, width)
                    self.sums[name], self.counts[name] = (
                        _widen(self.sums[name], width),
                        _widen(self.counts[name], width),
                    )
                total, count = total + self.sums[name], count + self.counts[name]
            self.sums[name], self.counts[name] = total, count
        self.sequences += batch
        self.seq_len = max(self.seq_len, int(seq_len))
        self.details.update(details or {})

    def summary(self) -> dict[str, Any]:
        """The summary dict of everything added (see `hf_posenc.analysis.metrics.summarize`)."""
        if self.names is None:
            raise ValueError("no batch was added; there is nothing to summarise")
        summary: dict[str, Any] = {}
        per_layer: dict[str, Any] = {}
        per_head: dict[str, Any] = {}
        for name in self.names:
            head_means = _mean(self.sums[name], self.counts[name])  # [L, H]
            layer_means = _nanmean(head_means, dim=1)  # [L]
            summary[name] = _plain(_nanmean(layer_means))
            per_layer[name] = _plain(layer_means)
            per_head[name] = _plain(head_means)
        summary["per_layer"] = per_layer
        summary["per_head"] = per_head
        for key, (entry, prefix) in PROFILES.items():
            if key not in self.sums:
                continue
            layer_profile = _mean(self.sums[key], self.counts[key])  # [L, W]
            reach = (layer_profile.shape[-1] - 1) // 2
            if entry == "distance":
                summary[entry] = {"offsets": list(range(-reach, reach + 1))}
            else:
                summary.setdefault(entry, {"ranges": log_bin_ranges(reach, self.seq_len - 1)})
            summary[entry][f"{prefix}mean"] = _plain(_nanmean(layer_profile, dim=0))
            summary[entry][f"{prefix}per_layer"] = _plain(layer_profile)
        summary["metrics"] = list(self.names)
        summary["num_layers"] = self.num_layers
        summary["num_heads"] = self.num_heads
        summary["batch_size"] = self.sequences
        summary["seq_len"] = self.seq_len
        summary.update(json_safe(dict(self.details)))
        return summary


def attention_results(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The flat fields a run's results keep from one `summarize` output: "locality", "symmetry",
    "symmetry_scale_aware" and "per_layer" rows ``{"layer": i, "locality": ...}``; undefined values left out."""
    per_layer = summary.get("per_layer") or {}
    num_layers = max((len(values) for values in per_layer.values()), default=0)
    rows = [
        {"layer": layer, **{key: per_layer[key][layer] for key in SUMMARY_METRICS if key in per_layer}}
        for layer in range(num_layers)
    ]
    found = {key: summary[key] for key in SUMMARY_METRICS if summary.get(key) is not None}
    return {**found, "per_layer": rows} if rows else found

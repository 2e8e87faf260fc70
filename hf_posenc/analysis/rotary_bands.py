"""How much of the attention logits each band of rotary frequencies carries (RoPE and its settings).

Barbero et al. ("Round and Round We Go! What makes Rotary Positional Encodings useful?", ICLR 2025) read which
frequencies a RoPE model uses: the highest ones build positional heads, the lowest ones act as position-free
semantic channels. With RoPE the logit splits exactly over the rotated pairs of dimensions:
``q_i . k_j = sum_k c_k(i, j)``, where ``c_k(i, j)`` is the 2-D dot product of query pair ``k`` rotated by ``i w_k``
and key pair ``k`` rotated by ``j w_k`` (dimensions that are not rotated add their plain products).

Bands. The pairs the encoding rotates (frequency ``w_k > 0``, from its ``inverse_frequencies()``) are sorted from
the highest frequency to the lowest and cut into three bands of (nearly) equal size, ``high``, ``medium`` and
``low``: with RoPE's geometric frequencies ``theta^(-2k/d)`` equal counts are equal widths in log frequency. The
dimensions it does not rotate (partial rotation, or p-RoPE's truncated frequencies, whose ``w`` is 0) form the band
``unrotated``, reported only where there is one.

Share. For one matrix (a layer, sequence and head) the band's part of the logit is
``l_b(i, j) = sum over its pairs of c_k(i, j)``, and its share is ``sum |l_b(i, j)| / sum over bands of
sum |l_b'(i, j)|``, the sums over real query and key pairs (padding excluded). Absolute values, because signed
contributions cancel (a band can add large positive and negative logits that sum to nothing) and a signed share
need not lie in [0, 1]. The shares of a matrix add up to 1; NaN where every logit is 0. Contributions cancel within
a band too: the share measures the band's net part of each logit, not its pairs one by one.

Which dimension turns at which frequency is read off the encoding's own rotation of unit vectors (positions 0 and
1), so the measurement makes no assumption on how an encoding lays its pairs out; each read frequency must be one
of ``inverse_frequencies()``, else a ValueError says so. The measurement needs queries and keys: it runs inside
the model (`recording`, used by `hf_posenc.analysis.model_attention`), for hf_posenc models on the rotate route.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["BAND_NAMES", "RotaryBands", "band_masses", "rotary_bands", "recording"]

BAND_NAMES = ("high", "medium", "low", "unrotated")
# Frequencies computed in float32 agree to ~1e-7 relative; a read frequency this far from every declared one means
# the layout or the frequencies are not what the encoding says.
_MATCH_TOLERANCE = 1e-4
# Below this angle per position a dimension does not turn within 1e6 positions: it is not rotated.
_UNROTATED = 1e-9


class RotaryBands(NamedTuple):
    """The bands of one rotary encoding: their names, the dimensions of a head in each, and a description of each
    for the summary (``{"dimensions": n, "frequencies": [highest, lowest]}``, in radians per position)."""

    names: tuple[str, ...]
    dimensions: tuple[Tensor, ...]
    description: dict[str, dict[str, Any]]


def _dimension_frequencies(encoding, device: torch.device) -> Tensor:
    """[head_dim] float64: the angle by which the encoding turns each dimension from one position to the next."""
    size = encoding.head_dim
    context = encoding.layer_context(2, device, torch.float64)
    units = torch.eye(size, dtype=torch.float64, device=device)[:, None, None, :].expand(size, 1, 2, size)
    rotated, _ = encoding.rotate(units, units, context)
    at_one = rotated[:, 0, 1, :]  # row d: unit vector d at position 1
    cosine = at_one.diagonal()
    sine = (at_one - torch.diag_embed(cosine)).norm(dim=-1)  # what moved to the pair's other dimension
    return torch.atan2(sine, cosine)


def rotary_bands(encoding, device: torch.device | str = "cpu") -> RotaryBands | None:
    """The bands of `encoding` (module docstring), or None when it is not a rotary encoding that declares its
    frequencies (``route == "rotate"`` and an ``inverse_frequencies()`` method)."""
    if getattr(encoding, "route", None) != "rotate" or not callable(getattr(encoding, "inverse_frequencies", None)):
        return None
    device = torch.device(device)
    with torch.no_grad():
        declared = torch.as_tensor(encoding.inverse_frequencies()).to(device=device, dtype=torch.float64).flatten()
        read = _dimension_frequencies(encoding, device)
    rotated = declared[declared > _UNROTATED].sort(descending=True).values
    cuts = [part for part in torch.tensor_split(rotated, 3) if part.numel()]
    band_of_dimension = torch.full_like(read, len(cuts), dtype=torch.int64)  # unrotated unless matched below
    turning = read > _UNROTATED
    if bool(turning.any()):
        if rotated.numel() == 0:
            raise ValueError(
                f"the '{encoding.name}' encoding rotates dimensions but inverse_frequencies() declares no frequency "
                "above 0"
            )
        distance = (read[turning, None] - rotated[None, :]).abs() / rotated[None, :]
        closest = distance.min(dim=-1)
        if float(closest.values.max()) > _MATCH_TOLERANCE:
            worst = int(closest.values.argmax())
            raise ValueError(
                f"the '{encoding.name}' encoding turns a dimension by {float(read[turning][worst]):.6g} per position, "
                "which is none of its inverse_frequencies(); the frequency bands cannot be measured"
            )
        band_sizes = torch.tensor([part.numel() for part in cuts], device=device)
        band_of_dimension[turning] = torch.bucketize(closest.indices, band_sizes.cumsum(0), right=True)
        read[turning] = rotated[closest.indices]  # report the declared frequencies, not their float32 readings
    names, dimensions, description = [], [], {}
    for band, name in enumerate(BAND_NAMES[: len(cuts)] + ("unrotated",)):
        members = (band_of_dimension == band).nonzero().flatten()
        if members.numel() == 0:
            continue
        frequencies = read[members]
        names.append(name)
        dimensions.append(members)
        description[name] = {
            "dimensions": int(members.numel()),
            "frequencies": [float(frequencies.max()), float(frequencies.min())] if name != "unrotated" else [0.0, 0.0],
        }
    return RotaryBands(tuple(names), tuple(dimensions), description)


def band_masses(query: Tensor, key: Tensor, dimensions: tuple[Tensor, ...], real: Tensor | None) -> Tensor:
    """[batch, heads, bands] float64: ``sum |l_b(i, j)|`` over real (query, key) pairs, from rotated ``[batch,
    heads, T, head_dim]`` queries and keys; `real` is ``[batch, T]`` bool (None: every token is real).

    Padded queries and keys are zeroed first, so every pair that involves one has logit 0 and adds nothing: no
    [T, T] mask. The head's dimensions are gathered once into band order, so each band is a slice (selecting
    scattered dimensions of the last axis per band measured 10x slower than its matrix product on CPU)."""
    if real is not None:
        query = torch.where(real[:, None, :, None], query, 0.0)
        key = torch.where(real[:, None, :, None], key, 0.0)
    order = torch.cat(dimensions).to(query.device)
    query = query.gather(-1, order.expand(*query.shape[:-1], -1))
    key = key.gather(-1, order.expand(*key.shape[:-1], -1))
    masses, start = [], 0
    for members in dimensions:
        band = slice(start, start + len(members))
        start += len(members)
        logits = query[..., band] @ key[..., band].transpose(-1, -2)
        # Rows of T keys add up well in float32; the rows' totals are added in float64.
        masses.append(logits.abs_().sum(dim=-1).sum(dim=-1, dtype=torch.float64))
    return torch.stack(masses, dim=-1)


@contextmanager
def recording(model, attention_mask: Tensor | None) -> Iterator[tuple[RotaryBands, list[Tensor]] | None]:
    """While the block runs `model` once, record each layer's `band_masses` ([batch, heads, bands]) into the list
    it yields with the bands; yields None (records nothing) for a model without a rotary encoding to read."""
    encoding = getattr(getattr(model, "base_model", model), "position", None)
    bands = None if encoding is None else rotary_bands(encoding, next(model.parameters()).device)
    if bands is None:
        yield None
        return
    real = None if attention_mask is None else attention_mask != 0
    records: list[Tensor] = []
    rotate = encoding.rotate

    def rotate_and_record(query: Tensor, key: Tensor, context):
        query, key = rotate(query, key, context)
        records.append(band_masses(query.detach(), key.detach(), bands.dimensions, real))
        return query, key

    # An instance attribute shadows the method for this run only; the encoder calls it once per layer.
    encoding.rotate = rotate_and_record
    try:
        yield bands, records
    finally:
        del encoding.rotate

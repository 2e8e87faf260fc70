"""The input of the attention metrics: checked, flattened to ``[N, T, T]`` and compacted so that each sequence's real
tokens come first, then validated chunk by chunk (square, finite, non-negative, rows summing to 1, no mass on
padded keys). `hf_posenc.analysis.metrics` measures what this module hands it; both its paths (the C kernel and
PyTorch) raise the errors written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["Prepared", "as_attention_tensor", "iter_chunks", "prepare", "validate_values"]

# Elements per chunk of T x T matrices. On CPU a chunk (2 MiB in float64) and its temporaries stay in a core's
# L2 cache, which measured 2-4x faster than one big pass; on GPU a chunk is large enough to fill the device
# while bounding each float64 temporary to 256 MiB. At least one matrix is processed per chunk.
_CHUNK_ELEMENTS = 1 << 18
_CHUNK_ELEMENTS_GPU = 1 << 25


class Prepared(NamedTuple):
    """Validated input, flattened to ``[N, T, T]`` with each sequence's real tokens first."""

    matrices: Tensor  # [N, T, T] in the input's floating dtype
    lengths: Tensor | None  # [N] number of real tokens per matrix (long), None when all T tokens are real
    leading_shape: torch.Size  # the shape that per-matrix results take
    row_sum_tolerance: float


def _default_row_sum_tolerance(dtype: torch.dtype) -> float:
    # Softmax outputs stored in 16-bit floats are only good to a few 1e-3 per row.
    return 2e-2 if torch.finfo(dtype).bits <= 16 else 1e-3


def _unravel(flat_index: int, shape: Sequence[int]) -> tuple[int, ...]:
    """Python-side unravel of one index, for error messages only."""
    coords = []
    for size in reversed(list(shape)):
        coords.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(coords))


def _dense_with_values(tensor: Tensor, name: str) -> Tensor:
    """`tensor` as an ordinary (strided) tensor; a meta tensor, which has a shape but no values, is an error."""
    if tensor.is_meta:
        raise ValueError(
            f"{name} is a meta tensor: it has a shape but no values (from a model on the meta device, e.g. under "
            "init_empty_weights or device_map='meta'); run a model with real weights and measure its output"
        )
    if tensor.layout != torch.strided:  # sparse attention is valid input; the metrics read every entry
        tensor = tensor.to_dense()
    return tensor


def as_attention_tensor(attn: Any) -> Tensor:
    if not isinstance(attn, Tensor):
        try:
            attn = torch.as_tensor(attn)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"attn must be a tensor of attention probabilities [..., T, T]; could not convert a "
                f"{type(attn).__name__} to a tensor ({error})"
            ) from None
    attn = _dense_with_values(attn.detach(), "attn")  # the metrics are not differentiable: no autograd graph
    if attn.is_complex():
        raise ValueError(f"attn must hold real attention probabilities; got complex dtype {attn.dtype}")
    if not attn.is_floating_point():
        attn = attn.to(torch.float64)  # 0/1 integer or bool matrices are valid (one-hot rows)
    if attn.dim() < 2:
        raise ValueError(f"attn must have at least 2 dimensions [..., T, T]; got shape {tuple(attn.shape)}")
    rows, cols = attn.shape[-2], attn.shape[-1]
    if rows != cols:
        raise ValueError(
            f"attention matrices must be square [..., T, T]; got shape {tuple(attn.shape)} whose last two "
            f"sizes are {rows} (queries) and {cols} (keys)"
        )
    if attn.numel() == 0:
        raise ValueError(f"attn is empty (shape {tuple(attn.shape)}); there is no matrix to measure")
    return attn


def _batch_size_of(attn: Tensor) -> int:
    # Hugging Face layout: [..., batch, heads, T, T]; [batch, T, T] without heads; one matrix is batch 1.
    if attn.dim() >= 4:
        return attn.shape[-4]
    if attn.dim() == 3:
        return attn.shape[0]
    return 1


def _check_mask(attention_mask: Any, attn: Tensor) -> Tensor:
    """Validate the mask and return it as a bool tensor [batch, T] on attn's device."""
    if not isinstance(attention_mask, Tensor):
        try:
            attention_mask = torch.as_tensor(attention_mask)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"attention_mask could not be converted to a tensor ({error})") from None
    attention_mask = _dense_with_values(attention_mask, "attention_mask")
    seq_len = attn.shape[-1]
    batch = _batch_size_of(attn)
    layout = {2: "[T, T] (batch 1)", 3: "[batch, T, T]"}.get(attn.dim(), "[..., batch, heads, T, T]")
    if attention_mask.dim() != 2 or tuple(attention_mask.shape) != (batch, seq_len):
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but attn of shape {tuple(attn.shape)} "
            f"(read as {layout}) needs an attention_mask of shape ({batch}, {seq_len}) = [batch, T]"
        )
    if attention_mask.dtype != torch.bool:
        if attention_mask.is_complex() or not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise ValueError(
                "attention_mask must hold only 0 (padding) and 1 (real token); got other values "
                f"{attention_mask[(attention_mask != 0) & (attention_mask != 1)].unique()[:5].tolist()}"
            )
        attention_mask = attention_mask != 0
    empty = (~attention_mask.any(dim=-1)).nonzero().flatten()
    if empty.numel() > 0:
        raise ValueError(
            f"attention_mask marks no real token in sequence(s) {empty[:5].tolist()}; every sequence needs "
            "at least one real token (1) to be measured"
        )
    return attention_mask.to(attn.device)


def _compact_real_tokens_first(attn: Tensor, real: Tensor) -> Tensor:
    """Reorder rows and columns so each sequence's real tokens come first, in their original order.

    After this, every sequence is right padded and a real token's index is its rank among real tokens,
    which is its position in the unpadded sequence.
    """
    seq_len = attn.shape[-1]
    order = torch.argsort((~real).to(torch.int8), dim=-1, stable=True)  # [batch, T] real positions first
    leading = attn.shape[:-2]
    if attn.dim() >= 4:
        order = order.view(order.shape[0], 1, seq_len)
    elif attn.dim() == 2:
        order = order.view(seq_len)
    order = order.expand(*leading, seq_len)
    reordered = attn.gather(-2, order.unsqueeze(-1).expand(*leading, seq_len, seq_len))
    return reordered.gather(-1, order.unsqueeze(-2).expand(*leading, seq_len, seq_len))


def _lengths_for(attn: Tensor, real: Tensor) -> Tensor:
    lengths = real.sum(dim=-1)  # [batch]
    leading = attn.shape[:-2]
    if attn.dim() >= 4:
        lengths = lengths.view(lengths.shape[0], 1)
    elif attn.dim() == 2:
        lengths = lengths.view(())
    return lengths.expand(leading).reshape(-1)


def iter_chunks(matrices: Tensor, lengths: Tensor | None):
    """Yield (matrices, lengths) slices of at most _CHUNK_ELEMENTS elements (at least one matrix)."""
    count, seq_len, _ = matrices.shape
    budget = _CHUNK_ELEMENTS if matrices.device.type == "cpu" else _CHUNK_ELEMENTS_GPU
    step = max(1, budget // (seq_len * seq_len))
    for start in range(0, count, step):
        yield matrices[start : start + step], None if lengths is None else lengths[start : start + step]


def _first_true(flags: Tensor) -> tuple[int, ...]:
    return tuple(int(v) for v in flags.nonzero()[0].tolist())


def _validate_chunk(
    chunk: Tensor, lengths: Tensor | None, start: int, prepared_shape: torch.Size, masked: bool, tol: float
) -> None:
    count, seq_len, _ = chunk.shape
    positions = torch.arange(seq_len, device=chunk.device)
    if lengths is None:
        real_rows = torch.ones(count, seq_len, dtype=torch.bool, device=chunk.device)
    else:
        real_rows = positions < lengths[:, None]
    row_sums = chunk.sum(dim=-1, dtype=torch.float64)  # [C, T]
    row_what = "real-token row" if masked else "row"

    def where(matrix: int, row: int, col: int | None = None) -> str:
        index = _unravel(start + matrix, prepared_shape)
        text = f"matrix {index} (of leading shape {tuple(prepared_shape)}), {row_what} {row}"
        return text + (f", column {col}" if col is not None else "")

    nonfinite_rows = real_rows & ~torch.isfinite(row_sums)
    if bool(nonfinite_rows.any()):
        bad = ~torch.isfinite(chunk) & real_rows[:, :, None]
        if bool(bad.any()):
            m, r, c = _first_true(bad)
            raise ValueError(
                f"attn has {int(bad.sum())} non-finite entries (NaN or inf), e.g. {chunk[m, r, c].item()} at "
                f"{where(m, r, c)}; attention probabilities must be finite"
            )
        m, r = _first_true(nonfinite_rows)
        raise ValueError(f"attn row sums overflow to {row_sums[m, r].item()} at {where(m, r)}")
    row_minima = chunk.amin(dim=-1)
    negative_rows = real_rows & (row_minima < 0)
    if bool(negative_rows.any()):
        bad = (chunk < 0) & real_rows[:, :, None]
        m, r, c = _first_true(bad)
        raise ValueError(
            f"attn has {int(bad.sum())} negative entries, e.g. {chunk[m, r, c].item():.6g} at {where(m, r, c)}; "
            "attention probabilities must be >= 0 (pass softmax outputs, not raw scores)"
        )
    off = real_rows & ((row_sums - 1.0).abs() > tol)
    if bool(off.any()):
        m, r = _first_true(off)
        raise ValueError(
            f"attn rows must sum to 1 (row-stochastic, within {tol:g}); {int(off.sum())} row(s) do not, e.g. "
            f"{where(m, r)} sums to {row_sums[m, r].item():.6g} (pass softmax probabilities over the keys)"
        )
    if lengths is not None:
        real_cols = real_rows[:, None, :]
        real_mass = chunk.masked_fill(~real_cols, 0).sum(dim=-1, dtype=torch.float64)
        leak = real_rows & ((row_sums - real_mass) > tol)
        if bool(leak.any()):
            m, r = _first_true(leak)
            raise ValueError(
                f"attention_mask does not match attn: {int(leak.sum())} real-token row(s) put more than {tol:g} "
                f"of their mass on padded keys, e.g. {where(m, r)} puts {(row_sums - real_mass)[m, r].item():.6g}"
                "; pass the attention_mask the model was run with"
            )


def prepare(attn: Any, attention_mask: Any, row_sum_tolerance: float | None) -> Prepared:
    attn = as_attention_tensor(attn)
    tol = _default_row_sum_tolerance(attn.dtype) if row_sum_tolerance is None else float(row_sum_tolerance)
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"row_sum_tolerance must be a finite number >= 0; got {row_sum_tolerance!r}")
    seq_len = attn.shape[-1]
    leading = attn.shape[:-2]
    lengths = None
    if attention_mask is not None:
        real = _check_mask(attention_mask, attn)
        if not bool(real.all()):
            right_padded = torch.arange(seq_len, device=real.device) < real.sum(-1, keepdim=True)
            is_prefix = bool((real == right_padded).all())
            if not is_prefix:
                attn = _compact_real_tokens_first(attn, real)
            lengths = _lengths_for(attn, real)
    return Prepared(attn.reshape(-1, seq_len, seq_len), lengths, leading, tol)


def validate_values(prepared: Prepared) -> None:
    """The PyTorch validation of the values (finite, >= 0, rows summing to 1, nothing on padded keys)."""
    start = 0
    for chunk, chunk_lengths in iter_chunks(prepared.matrices, prepared.lengths):
        _validate_chunk(
            chunk,
            chunk_lengths,
            start,
            prepared.leading_shape,
            prepared.lengths is not None,
            prepared.row_sum_tolerance,
        )
        start += chunk.shape[0]

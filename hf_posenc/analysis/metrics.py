"""Locality and symmetry of attention matrices.

The two properties come from "The Locality and Symmetry of Positional Encodings" (Chen, Varoquaux and
Suchanek, Findings of EMNLP 2023). For a row-stochastic attention matrix ``A`` of size ``T x T`` (row ``i``
is the query, column ``j`` the key):

* **Locality** is the mean over rows ``i`` of ``sum_j A[i, j] * 2 ** -|i - j|``. It lies in ``[0, 1]``;
  1 means every query attends only to itself, uniform attention scores about ``3 / T``.
* **Symmetry**, ``method="reference"`` (the paper's definition and the default): for each row ``i`` with
  ``k = min(i, T - 1 - i) >= 1`` take the ``k`` mirrored differences ``d_t = |A[i, i-t] - A[i, i+t]|``,
  ``t = 1..k``; rescale them within the row to ``[0, 1]`` by min-max (a row whose differences are all equal,
  i.e. whose range is below ``10 * eps(float64)`` as in scikit-learn's ``MinMaxScaler``, gives zeros); pool
  the rescaled values of all rows (so a row weighs as many values as it has pairs); symmetry is ``1 -`` their
  mean. The first and last rows have no pair and are skipped.
* **Symmetry**, ``method="scale_aware"``: per row ``1 - sum_t |A[i,i-t] - A[i,i+t]| / sum_t (A[i,i-t] +
  A[i,i+t])``, pooled over rows weighted by that mirrored mass, which equals ``1 - (sum of all differences)
  / (sum of all mirrored mass)``. A difference counts as zero when ``|a - b| <= tolerance * max(a, b)``, so
  float noise does not read as asymmetry; because each ignored difference is at most ``tolerance`` times its
  pair's mass, the tolerance moves the score by at most ``tolerance``. A matrix with no mass on mirrored
  pairs (the identity, for instance) has nothing asymmetric in it and scores 1.

Both symmetries only look at mirrored pairs ``(i - t, i + t)``; mass a row puts beyond its mirror window
(for row 1, anything right of column 2) is invisible to them, as in the paper. With ``T <= 2`` no row has a
pair and symmetry is undefined: it is returned as NaN.

The reference symmetry has known flaws, which is why ``scale_aware`` exists beside it: min-max rescaling
within each row throws magnitude away, so a Gaussian profile whose right side is 0.99x as wide as its left
scores about like (even below) one that is 0.5x as wide, and attention that only ever looks left can score 1
(its differences within a row are all equal); it amplifies float noise (a matrix symmetric in exact
arithmetic but computed in float32 scores far below 1, since rescaling blows rounding errors up to [0, 1]);
and random matrices score about 0.55-0.8 rather than 0. The scale-aware method reads as "the share of the
mirrored attention mass that matches its mirror image": 1 for symmetric attention, 0 for one-sided attention,
0.995 and 0.64 for the two Gaussians; for random matrices it is ``1 - E|a - b| / E(a + b)`` (2/3 for
uniform entries, near 0 for very peaked rows). ``benchmarks/metrics_examples.py`` prints both methods on the
same matrices.

Padding. With ``attention_mask`` ``[batch, T]`` (1 = real token, 0 = padding; right, left or any other
padding) each sequence is measured on its real tokens only, exactly as if the model had been run without
padding: the metric sees the sub-matrix of real queries x real keys, and distances are counted between real
tokens (the ``r``-th real token is at distance ``|r - s|`` from the ``s``-th). Rows of padded queries are
ignored entirely (they may hold anything, even NaN). The real rows are *not* renormalised: a model that
masks padding puts (numerically) zero mass on padded keys, so the real block already sums to 1 per row;
if real rows put more than the row-sum tolerance on padded keys, the mask is not the one the model used and
a ``ValueError`` says so.

Distance profiles (``summarize``). Near the query, the mean attention ``A[i, i + d]`` at each signed distance
``d = -k..k`` over the queries where that key exists. Over the whole range, log bins of the signed distance
``d = j - i``: bin 0 is ``d = 0``, bin ``b >= 1`` on each side holds ``|d|`` in ``[2^(b-1), 2^b - 1]`` (1, 2-3, 4-7,
..., the last cut at ``T - 1``); a matrix's value in a bin is its attention there divided by the number of (real
query, real key) pairs in it, i.e. the mean attention per key, so bins of different widths compare (uniform
attention is ``1 / T`` in every bin) and attention that rises again far from the query, the U-shape reported for
RoPE, shows at the ends. Attention sinks (``hf_posenc.analysis.sinks``) and the rotary frequency bands
(``hf_posenc.analysis.rotary_bands``, from queries and keys inside the model) are defined in their modules.

Two implementations give the same numbers (to ~1e-15) and the same errors, accumulated in float64, without
gradients (the inputs are detached), with no Python loop over rows, heads or batch:

* CPU tensors go through a fused C kernel (``attention_stats.c``, built on first use by
  hf_posenc.analysis.kernel), which validates each row and computes every metric in one read of it;
  ``benchmarks/bench_metrics.py`` measures it at about 2x one ``A.sum()`` over the same tensor.
* GPU tensors, and CPU tensors when no C compiler is available or ``HF_POSENC_METRICS_KERNEL=off``, take the
  pure-PyTorch path: tensor code on the input's device, processed in chunks of matrices (cache-sized on CPU,
  large on GPU) so that float64 temporaries stay bounded on large batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import torch
from torch import Tensor

from . import kernel as fused_kernel
from . import sinks
from .attention_input import Prepared, as_attention_tensor, iter_chunks, prepare, validate_values
from .distance_bins import bins_per_side, chunk_log_bin_totals, log_bin_pairs
from .summary import SUMMARY_METRICS, AttentionAccumulator, attention_results

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "DEFAULT_SYMMETRY_TOLERANCE",
    "SUMMARY_METRICS",
    "SYMMETRY_METHODS",
    "attention_results",
    "bins_per_side",
    "locality",
    "measure_attentions",
    "summarize",
    "symmetry",
    "validate_attention",
]

SYMMETRY_METHODS = ("reference", "scale_aware")
# Relative tolerance of the scale-aware symmetry: float32 softmax noise is ~1e-6 relative, real asymmetry
# below 1e-4 of a pair's mass is irrelevant, and the score can move by at most this much because of it.
DEFAULT_SYMMETRY_TOLERANCE = 1e-4
DEFAULT_MAX_DISTANCE = 8
# A min-max range below this counts as a constant row (scikit-learn's MinMaxScaler rule in float64).
_CONSTANT_RANGE = 10 * torch.finfo(torch.float64).eps


def validate_attention(attn: Any, attention_mask: Any = None, *, row_sum_tolerance: float | None = None) -> None:
    """Check that ``attn`` holds valid attention probabilities; raise ``ValueError`` naming what is wrong.

    Args:
        attn: ``[..., T, T]`` attention probabilities (Hugging Face layout ``[..., batch, heads, T, T]``,
            ``[batch, T, T]`` or one ``[T, T]`` matrix). Tensors, numpy arrays and nested lists are accepted.
        attention_mask: optional ``[batch, T]`` mask, 1 for real tokens and 0 for padding. The batch
            dimension of ``attn`` is the fourth from the end (the first of a 3-D input; a 2-D input is
            batch 1). Rows of padded queries are not checked.
        row_sum_tolerance: how far a real row's sum may be from 1 (and how much mass it may put on padded
            keys). Default: 1e-3, or 2e-2 for 16-bit dtypes.

    Raises:
        ValueError: a non-tensor that cannot be converted, fewer than 2 dimensions, non-square matrices,
            an empty tensor, non-finite or negative entries, rows that do not sum to 1, an attention_mask
            whose shape does not match, that holds values other than 0/1 or marks a sequence with no real
            token, or real rows that put mass on padded keys (a mask that is not the model's).
    """
    _measure(prepare(attn, attention_mask, row_sum_tolerance))


# ----------------------------------------------------------------------------------------------------------
# Index tables, cached per (T, device): they depend on nothing else
# ----------------------------------------------------------------------------------------------------------


# The cached tables are about T^2 float64 or int64 values each (a few MiB at T = 512); few are kept so that
# analyses over many sequence lengths do not pile them up.
@lru_cache(maxsize=8)
def _locality_weights(seq_len: int, device: torch.device) -> Tensor:
    positions = torch.arange(seq_len, device=device, dtype=torch.float64)
    return torch.exp2(-(positions[:, None] - positions[None, :]).abs()).reshape(-1)  # [T*T]


class _MirrorTables(NamedTuple):
    """Where the mirrored pairs of a T x T matrix are, laid out as [T rows, K = (T-1)//2 slots]."""

    left_index: Tensor  # [T*K] flat index of A[i, i - t'] with t' = min(t, k_i)
    right_index: Tensor  # [T*K] flat index of A[i, i + t']
    valid_weights: Tensor  # [T*K] float64, 1 where t <= k_i = min(i, T-1-i), else 0
    pair_count: int  # number of valid pairs, sum_i k_i
    rows: Tensor  # [T, 1] row index i
    slots: Tensor  # [1, K] offset t = 1..K


@lru_cache(maxsize=8)
def _mirror_tables(seq_len: int, device: torch.device) -> _MirrorTables:
    pairs = (seq_len - 1) // 2
    rows = torch.arange(seq_len, device=device)[:, None]
    slots = torch.arange(1, pairs + 1, device=device)[None, :]
    row_pairs = torch.minimum(rows, seq_len - 1 - rows)  # k_i
    # Slots beyond a row's last pair repeat that last pair (rows without pairs read the diagonal twice, a zero
    # difference): a repeated value moves neither the row's minimum nor its maximum, so min-max needs no mask.
    offsets = torch.minimum(slots, row_pairs)
    valid = slots <= row_pairs
    return _MirrorTables(
        left_index=(rows * seq_len + rows - offsets).reshape(-1),
        right_index=(rows * seq_len + rows + offsets).reshape(-1),
        valid_weights=valid.to(torch.float64).reshape(-1),
        pair_count=int(valid.sum()),
        rows=rows,
        slots=slots,
    )


@lru_cache(maxsize=16)
def _diagonal_tables(seq_len: int, max_distance: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Flat indices of A[i, i+d] for d = -k..k and every row i (clamped into the matrix), and a float64
    [2k+1, T] mask of the (d, i) whose key i+d exists."""
    offsets = torch.arange(-max_distance, max_distance + 1, device=device)[:, None]
    rows = torch.arange(seq_len, device=device)[None, :]
    keys = rows + offsets
    inside = (keys >= 0) & (keys < seq_len)
    return (rows * seq_len + keys.clamp(0, seq_len - 1)).reshape(-1), inside.to(torch.float64)


def _chunk_diagonal_totals(flat: Tensor, seq_len: int, max_distance: int) -> Tensor:
    """[C, 2k+1]: the sum of each diagonal d = -k..k (padding is zero, so only real pairs count)."""
    count = flat.shape[0]
    index, inside = _diagonal_tables(seq_len, max_distance, flat.device)
    values = flat.gather(1, index.expand(count, -1)).view(count, 2 * max_distance + 1, seq_len)
    return (values * inside).sum(dim=-1)


# ----------------------------------------------------------------------------------------------------------
# The computation, on one chunk of validated [C, T, T] matrices
# ----------------------------------------------------------------------------------------------------------


class _Workspace:
    """Scratch tensors reused across the chunks of one call.

    Allocating fresh megabyte-sized tensors for every chunk costs more than the arithmetic on them (the
    memory is handed back to the OS and page-faulted in again), so each named buffer is allocated once, at
    the size of the first (largest) chunk, and later chunks use a prefix of it.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.buffers: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> Tensor:
        size = math.prod(shape)
        buffer = self.buffers.get(name)
        if buffer is None or buffer.numel() < size or buffer.dtype != dtype:
            buffer = torch.empty(size, dtype=dtype, device=self.device)
            self.buffers[name] = buffer
        return buffer[:size].view(shape)


def _as_float64_without_padding(chunk: Tensor, lengths: Tensor | None, workspace: _Workspace) -> Tensor:
    """The chunk as float64 [C, T, T] with padded rows and columns zeroed (a view when nothing changes)."""
    if chunk.dtype == torch.float64 and lengths is None:
        return chunk
    converted = workspace.get("float64", tuple(chunk.shape)).copy_(chunk)
    if lengths is not None:
        positions = torch.arange(chunk.shape[-1], device=chunk.device)
        real = positions < lengths[:, None]
        converted.masked_fill_(~(real[:, :, None] & real[:, None, :]), 0.0)
    return converted


# Each chunk function returns raw float64 totals per matrix; _measure turns them into scores once, so the
# per-chunk work is a handful of large tensor operations and no small bookkeeping.


def _chunk_locality_total(flat: Tensor, seq_len: int) -> Tensor:
    # Padded entries are zero, so this is the sum over real rows and keys of A[i, j] * 2^-|i-j|: one float64
    # matrix-vector product, with no temporary the size of the input.
    return flat @ _locality_weights(seq_len, flat.device)


def _chunk_symmetry_totals(
    flat: Tensor,
    seq_len: int,
    lengths: Tensor | None,
    methods: Sequence[str],
    tolerance: float,
    workspace: _Workspace,
) -> dict[str, Tensor]:
    """Per matrix: the sum of min-max rescaled differences ("reference"), and the sum of kept differences
    and of mirrored mass ("scale_aware"), each over the valid pairs."""
    count = flat.shape[0]
    pairs = (seq_len - 1) // 2
    if pairs == 0 or (lengths is not None and int(lengths.max()) <= 2):  # no pair anywhere: all NaN later
        zeros = flat.new_zeros(count)
        return {"reference": zeros, "asymmetric": zeros, "mass": zeros}
    tables = _mirror_tables(seq_len, flat.device)
    shape = (count, seq_len, pairs)
    # gather with a broadcast (stride-0) index is several times faster than index_select along dim 1 on CPU.
    left = workspace.get("left", shape)
    right = workspace.get("right", shape)
    torch.gather(flat, 1, tables.left_index.expand(count, -1), out=left.view(count, -1))
    torch.gather(flat, 1, tables.right_index.expand(count, -1), out=right.view(count, -1))
    differences = torch.sub(left, right, out=workspace.get("differences", shape)).abs_()

    valid = None
    if lengths is not None:
        # With padding, row i of a sequence of n real tokens has k = min(i, n - 1 - i) pairs (none if i >= n),
        # a prefix of the slots. Fill the slots past it with the row's last valid difference, as the static
        # tables do, so min and max stay unmasked.
        row_pairs = torch.minimum(tables.rows.T, lengths[:, None] - 1 - tables.rows.T).clamp_min(0)  # [C, T]
        valid = tables.slots <= row_pairs[:, :, None]  # [C, T, K]
        last_valid = differences.gather(-1, (row_pairs - 1).clamp_min(0)[:, :, None])
        differences = torch.where(valid, differences, last_valid, out=workspace.get("filled", shape))

    def masked_total(values: Tensor, scratch: bool) -> Tensor:
        """Sum over valid pairs: a matrix-vector product without padding, a masked sum with it (in place
        when `values` is scratch that nothing reads afterwards)."""
        if valid is None:
            return values.reshape(count, -1) @ tables.valid_weights
        if scratch:
            return values.masked_fill_(~valid, 0.0).sum(dim=(-1, -2))
        return values.masked_fill(~valid, 0.0).sum(dim=(-1, -2))

    totals = {}
    # The scale-aware sums go first: they only read `differences`, which the reference then rescales in
    # place. `left` and `right` serve as scratch space once read.
    if "scale_aware" in methods:
        if tolerance > 0:
            noise_level = torch.maximum(left, right, out=workspace.get("noise_level", shape)).mul_(tolerance)
            totals["mass"] = masked_total(left.add_(right), scratch=True)
            kept = torch.mul(differences, differences > noise_level, out=right)  # noise-level ones become 0
            totals["asymmetric"] = masked_total(kept, scratch=True)
        else:
            totals["mass"] = masked_total(left.add_(right), scratch=True)
            totals["asymmetric"] = masked_total(differences, scratch=False)
    if "reference" in methods:
        lowest = differences.amin(dim=-1, keepdim=True)
        spread = differences.amax(dim=-1, keepdim=True) - lowest
        # 1 / spread, or 0 for a (numerically) constant row, whose rescaled values are all 0.
        inverse_spread = torch.where(spread >= _CONSTANT_RANGE, 1.0 / spread, 0.0)
        totals["reference"] = masked_total(differences.sub_(lowest).mul_(inverse_spread), scratch=True)
    return totals


def _torch_totals(
    prepared: Prepared,
    want_locality: bool,
    symmetry_methods: Sequence[str],
    tolerance: float,
    max_distance: int | None,
    log_bins: bool,
) -> dict[str, Tensor]:
    """The raw per-matrix totals, computed chunk by chunk with PyTorch operations (any device)."""
    if not (want_locality or symmetry_methods or max_distance is not None or log_bins):
        return {}  # validation only
    seq_len = prepared.matrices.shape[-1]
    workspace = _Workspace(prepared.matrices.device)
    pieces: dict[str, list[Tensor]] = {}
    for chunk, chunk_lengths in iter_chunks(prepared.matrices, prepared.lengths):
        flat = _as_float64_without_padding(chunk, chunk_lengths, workspace).reshape(chunk.shape[0], -1)
        found: dict[str, Tensor] = {}
        if want_locality:
            found["locality"] = _chunk_locality_total(flat, seq_len)
        if max_distance is not None:
            found["diagonals"] = _chunk_diagonal_totals(flat, seq_len, max_distance)
        if log_bins:
            found["log_bins"] = chunk_log_bin_totals(flat, seq_len)
        if symmetry_methods:
            found.update(_chunk_symmetry_totals(flat, seq_len, chunk_lengths, symmetry_methods, tolerance, workspace))
        for key, value in found.items():
            pieces.setdefault(key, []).append(value)
    return {key: torch.cat(values) for key, values in pieces.items()}


def _kernel_totals(
    kernel: Any,
    prepared: Prepared,
    want_locality: bool,
    symmetry_methods: Sequence[str],
    tolerance: float,
    max_distance: int | None,
    log_bins: bool,
) -> dict[str, Tensor] | None:
    """The same totals from the fused C kernel (CPU), which also validates every real row. None when it found
    an invalid matrix: the caller then runs the PyTorch validation, which raises the error that names the
    problem (or, for a row sum within rounding of the tolerance, accepts it and the PyTorch path computes)."""
    flags = (
        (fused_kernel.WANT_LOCALITY if want_locality else 0)
        | (fused_kernel.WANT_REFERENCE if "reference" in symmetry_methods else 0)
        | (fused_kernel.WANT_SCALE_AWARE if "scale_aware" in symmetry_methods else 0)
        | (fused_kernel.WANT_DISTANCES if max_distance is not None else 0)
        | (fused_kernel.WANT_LOG_BINS if log_bins else 0)
    )
    table, invalid = fused_kernel.attention_totals(
        kernel,
        prepared.matrices,
        prepared.lengths,
        flags,
        max_distance or 0,
        prepared.row_sum_tolerance,
        tolerance,
        _CONSTANT_RANGE,
    )
    if invalid is not None:
        return None
    columns = {"locality": 0, "reference": 1, "asymmetric": 2, "mass": 3}
    totals = {key: table[:, column] for key, column in columns.items()}
    diagonals_stop = fused_kernel.RESULT_FIXED + 2 * (max_distance or 0) + 1
    if max_distance is not None:
        totals["diagonals"] = table[:, fused_kernel.RESULT_FIXED : diagonals_stop]
    if log_bins:
        totals["log_bins"] = table[:, diagonals_stop:]
    return totals


def _measure(
    prepared: Prepared,
    *,
    want_locality: bool = False,
    symmetry_methods: Sequence[str] = (),
    tolerance: float = DEFAULT_SYMMETRY_TOLERANCE,
    max_distance: int | None = None,
    log_bins: bool = False,
) -> dict[str, Tensor]:
    """Validate, then per-matrix float64 results [N] (and [N, 2k+1] for "distance_profile", [N, 2M+1] for
    "log_bins").

    Keys: "locality", "symmetry_reference", "symmetry_scale_aware" (those asked for), "distance_profile",
    "log_bins".
    CPU tensors take the fused kernel when it is available (see hf_posenc.analysis.kernel), everything else
    the PyTorch path; both give the same totals.
    """
    matrices, lengths = prepared.matrices, prepared.lengths
    seq_len = matrices.shape[-1]
    device = matrices.device
    options = (want_locality, symmetry_methods, tolerance, max_distance, log_bins)
    kernel = fused_kernel.load() if device.type == "cpu" else None
    totals = _kernel_totals(kernel, prepared, *options) if kernel is not None else None
    if totals is None:
        validate_values(prepared)
        totals = _torch_totals(prepared, *options)

    # Token counts per matrix: one Python number without padding (a few tensor operations fewer, which shows
    # at kernel speed), a float64 tensor [N] with it.
    real_tokens = float(seq_len) if lengths is None else lengths.to(torch.float64)
    # Rows i of n tokens have min(i, n-1-i) mirrored pairs: floor((n-1)^2 / 4) in all.
    pair_count = (real_tokens - 1) ** 2 // 4
    results: dict[str, Tensor] = {}
    if want_locality:
        results["locality"] = totals["locality"] / real_tokens
    if "reference" in symmetry_methods:
        # Without pairs the total is 0 and 0 / 0 = NaN, which _nan_without_pairs keeps.
        results["symmetry_reference"] = _nan_without_pairs(1.0 - totals["reference"] / pair_count, pair_count)
    if "scale_aware" in symmetry_methods:
        mass, asymmetric = totals["mass"], totals["asymmetric"]
        # No mirrored mass at all (the identity, for instance): nothing is asymmetric, the score is 1.
        score = torch.where(mass > 0, 1.0 - asymmetric / mass.clamp_min(torch.finfo(torch.float64).tiny), 1.0)
        results["symmetry_scale_aware"] = _nan_without_pairs(score, pair_count)
    if max_distance is not None:
        count = matrices.shape[0]
        real_tokens = torch.as_tensor(real_tokens, dtype=torch.float64, device=device).expand(count)
        offsets = torch.arange(-max_distance, max_distance + 1, device=device, dtype=torch.float64)
        rows_at_offset = (real_tokens[:, None] - offsets.abs()).clamp_min(0)  # rows i with i and i+d both real
        results["distance_profile"] = torch.where(
            rows_at_offset > 0, totals["diagonals"] / rows_at_offset.clamp_min(1), math.nan
        )
    if log_bins:
        count = matrices.shape[0]
        real_tokens = torch.as_tensor(real_tokens, dtype=torch.float64, device=device).expand(count)
        pairs = log_bin_pairs(real_tokens, seq_len)
        results["log_bins"] = torch.where(pairs > 0, totals["log_bins"] / pairs.clamp_min(1), math.nan)
    return results


def _nan_without_pairs(scores: Tensor, pair_count: float | Tensor) -> Tensor:
    """Symmetry is undefined (NaN) for matrices whose rows have no mirrored pair (at most 2 tokens)."""
    if isinstance(pair_count, Tensor):
        return scores.masked_fill(pair_count == 0, math.nan)
    return scores if pair_count > 0 else torch.full_like(scores, math.nan)


def _check_method(method: str) -> None:
    if method not in SYMMETRY_METHODS:
        raise ValueError(f"unknown symmetry method {method!r}; choose one of {', '.join(map(repr, SYMMETRY_METHODS))}")


def _check_tolerance(tolerance: float) -> float:
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0; got {tolerance!r}")
    return value


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------


def locality(attn: Any, attention_mask: Any = None) -> Tensor:
    """Locality of each attention matrix: mean over rows i of ``sum_j A[i, j] * 2 ** -|i - j|``.

    Args:
        attn: ``[..., T, T]`` attention probabilities, e.g. ``[batch, heads, T, T]`` or layers stacked in
            front; rows are queries and must sum to 1.
        attention_mask: optional ``[batch, T]`` (1 real, 0 padding; the batch dimension of ``attn`` is the
            fourth from the end). Each sequence is measured on its real tokens only, as if run unpadded.

    Returns:
        A float64 tensor of shape ``attn.shape[:-2]`` (a 0-d tensor for one matrix) on ``attn``'s device,
        each value in ``[0, 1]``.

    Raises:
        ValueError: for invalid input (see :func:`validate_attention`).
    """
    prepared = prepare(attn, attention_mask, None)
    values = _measure(prepared, want_locality=True)["locality"]
    return values.reshape(prepared.leading_shape)


def symmetry(
    attn: Any,
    attention_mask: Any = None,
    method: str = "reference",
    *,
    tolerance: float = DEFAULT_SYMMETRY_TOLERANCE,
) -> Tensor:
    """Symmetry of each attention matrix: how alike the attention to the left and to the right of a query is.

    Args:
        attn: ``[..., T, T]`` attention probabilities (see :func:`locality`).
        attention_mask: optional ``[batch, T]`` padding mask (see :func:`locality`).
        method: ``"reference"`` (default, the paper's min-max definition, for parity with its numbers) or
            ``"scale_aware"`` (mass-weighted ``1 - sum|left - right| / sum(left + right)``), both defined in
            this module's docstring.
        tolerance: ``scale_aware`` only: a mirrored difference counts as zero when ``|a - b| <= tolerance *
            max(a, b)``; it moves the score by at most ``tolerance``. Ignored by ``reference``.

    Returns:
        A float64 tensor of shape ``attn.shape[:-2]``. Values lie in ``[0, 1]``; NaN for a matrix (or a
        sequence, with a mask) of at most 2 tokens, where no row has a mirrored pair.

    Raises:
        ValueError: for an unknown method, a bad tolerance, or invalid input (see :func:`validate_attention`).
    """
    _check_method(method)
    tolerance = _check_tolerance(tolerance)
    prepared = prepare(attn, attention_mask, None)
    values = _measure(prepared, symmetry_methods=(method,), tolerance=tolerance)[f"symmetry_{method}"]
    return values.reshape(prepared.leading_shape)


def _layers_of(attentions: Any) -> list[Any]:
    if isinstance(attentions, Tensor) or hasattr(attentions, "__array__"):
        attentions = torch.as_tensor(attentions)
        if attentions.dim() != 5:
            raise ValueError(
                f"a stacked attentions tensor must be 5-D [layers, batch, heads, T, T]; got shape "
                f"{tuple(attentions.shape)} (pass a tuple of [batch, heads, T, T] tensors instead)"
            )
        return list(attentions.unbind(0))
    if isinstance(attentions, (tuple, list)):
        if not attentions:
            raise ValueError("attentions is empty; run the model with output_attentions=True")
        return list(attentions)
    raise ValueError(
        f"attentions must be a tuple of [batch, heads, T, T] tensors (model(..., output_attentions=True)"
        f".attentions) or a 5-D tensor; got {type(attentions).__name__}"
    )


def measure_attentions(
    attentions: Any,
    attention_mask: Any = None,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    tolerance: float = DEFAULT_SYMMETRY_TOLERANCE,
    log_bins: bool = True,
    input_ids: Any = None,
    special_token_ids: Mapping[str, Any] | None = None,
) -> dict[str, Tensor]:
    """Every per-matrix measurement of one batch of a model's attentions, before any averaging: what `summarize`
    averages, and what `hf_posenc.analysis.summary.AttentionAccumulator` adds up batch after batch.

    Takes the arguments of `summarize`, plus `log_bins=False` to skip the log-binned profile. Returns float64
    tensors on the CPU: ``[layers, batch, heads]`` for "locality", "symmetry", "symmetry_scale_aware" and each
    "sink_<name>"; ``[layers, batch, heads, 2k+1]`` for "distance_profile" and ``[..., 2M+1]`` for "log_bins" and
    "log_bins_relative" (the same times the sequence's number of real tokens).
    NaN marks an undefined value. Raises ValueError as `summarize` does.
    """
    layers = _layers_of(attentions)
    if not isinstance(max_distance, int) or isinstance(max_distance, bool) or max_distance < 0:
        raise ValueError(f"max_distance must be an int >= 0; got {max_distance!r}")
    tolerance = _check_tolerance(tolerance)
    expected_shape = None
    sink_tokens: dict[str, sinks.SinkColumns] = {}
    real = None
    per_layer: list[dict[str, Tensor]] = []
    for layer_index, layer in enumerate(layers):
        if layer is None:
            raise ValueError(
                f"attentions[{layer_index}] is None: the model returned no attention weights; run it with "
                "output_attentions=True and attn_implementation='eager'"
            )
        layer = as_attention_tensor(layer)
        if layer.dim() != 4:
            raise ValueError(
                f"attentions[{layer_index}] has shape {tuple(layer.shape)}; each layer must be [batch, heads, T, T]"
            )
        if expected_shape is None:
            expected_shape = layer.shape
        elif layer.shape != expected_shape:
            raise ValueError(
                f"attentions[{layer_index}] has shape {tuple(layer.shape)} but attentions[0] has "
                f"{tuple(expected_shape)}; every layer must have the same shape"
            )
        try:
            measured = _measure(
                prepare(layer, attention_mask, None),
                want_locality=True,
                symmetry_methods=SYMMETRY_METHODS,
                tolerance=tolerance,
                max_distance=min(max_distance, layer.shape[-1] - 1),
                log_bins=log_bins,
            )
        except ValueError as error:
            raise ValueError(f"attentions[{layer_index}]: {error}") from None
        batch, heads = layer.shape[0], layer.shape[1]
        if real is None:  # the mask is valid now: prepare checked it
            shape = (batch, layer.shape[-1])
            real = torch.ones(shape, dtype=torch.bool) if attention_mask is None else torch.as_tensor(attention_mask)
            real = real.to(layer.device) != 0
            sink_tokens = {
                name: sinks.sink_columns(mask)
                for name, mask in sinks.sink_masks(input_ids, special_token_ids, real).items()
            }
        names = {
            "locality": "locality",
            "symmetry_reference": "symmetry",
            "symmetry_scale_aware": "symmetry_scale_aware",
        }
        values = {name: measured[key] for key, name in names.items()}
        values.update({f"sink_{name}": sinks.sink_values(layer, real, sink) for name, sink in sink_tokens.items()})
        values.update({key: measured[key] for key in ("distance_profile", "log_bins") if key in measured})
        if log_bins:  # times the sequence's length: uniform attention is 1 in every bin, whatever the length
            values["log_bins_relative"] = measured["log_bins"] * real.sum(-1).repeat_interleave(heads)[:, None]
        per_layer.append(
            {
                key: value if key.startswith("sink_") else value.reshape(batch, heads, *value.shape[1:])
                for key, value in values.items()
            }
        )
    stacked = {key: torch.stack([values[key] for values in per_layer]) for key in per_layer[0]}
    for name, sink in sink_tokens.items():  # [layers, batch, heads, W] -> [layers, batch, heads], in one go
        stacked[f"sink_{name}"] = sinks.sink_share(stacked[f"sink_{name}"], real, sink)
    return {key: value.cpu() for key, value in stacked.items()}


def summarize(
    attentions: Any,
    attention_mask: Any = None,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    tolerance: float = DEFAULT_SYMMETRY_TOLERANCE,
    input_ids: Any = None,
    special_token_ids: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Locality, both symmetries, the distance profiles and (given the tokens) the attention sinks of a model's
    attentions, as plain JSON-serialisable Python values.

    Args:
        attentions: what a Hugging Face model returns with ``output_attentions=True``: a tuple (or list) of
            per-layer tensors ``[batch, heads, T, T]``; or one stacked tensor ``[layers, batch, heads, T, T]``.
        attention_mask: optional ``[batch, T]`` padding mask (1 real, 0 padding); each sequence is measured
            on its real tokens only.
        max_distance: the signed distances reported in the distance profile, ``-max_distance..max_distance``
            (clamped to ``T - 1``).
        tolerance: the ``scale_aware`` symmetry tolerance (see :func:`symmetry`).
        input_ids: ``[batch, T]`` token ids, needed with `special_token_ids`.
        special_token_ids: ``{"cls": id, "sep": id}`` (an id, a list of ids, or None): each name whose id is not
            None is reported as the attention sink ``"sink_<name>"``. A tokenizer gives them as
            ``{"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id}``.

    Returns:
        A dict. Each metric is first computed per matrix (one per layer, sequence and head), then averaged
        over the batch for ``per_head``, over batch and heads for ``per_layer`` and over everything for the
        top-level value (every layer weighs the same). Undefined values (symmetry when every sequence has at
        most 2 real tokens, a distance no sequence reaches, a sink token no sequence holds) are skipped by the
        averages and reported as ``None``. Keys:

        - ``"locality"``, ``"symmetry"`` (reference method), ``"symmetry_scale_aware"``: overall means, float;
          ``"sink_cls"``, ``"sink_sep"`` (one per name in `special_token_ids` with an id): the share of attention
          that real queries give that token (module docstring).
        - ``"metrics"``: the names of those scalar metrics, in this order.
        - ``"per_layer"``: ``{"locality": [L floats], "symmetry": [...], ...}``, one entry per metric.
        - ``"per_head"``: the same keys, each ``[L][H]`` nested lists.
        - ``"distance"``: ``{"offsets": [-k, ..., k]`` (ints, ``j - i``: negative = keys left of the query),
          ``"mean": [2k+1 floats]`` (the mean attention a query gives the key at that offset, averaged over
          queries where that key exists, then over sequences, heads and layers),
          ``"per_layer": [L][2k+1]}``.
        - ``"distance_bins"``: the full-range profile in log bins, ``{"ranges": [[low, high], ...]`` (signed
          ``j - i``: ``..., [-7, -4], [-3, -2], [-1, -1], [0, 0], [1, 1], [2, 3], [4, 7], ...`` up to ``T - 1``),
          ``"mean"``, ``"per_layer"``: the mean attention per (query, key) pair in each bin, ``"relative_mean"``,
          ``"relative_per_layer"}``: the same relative to uniform attention (times each sequence's length ``n``
          before averaging, so 1 = uniform), which sequences of different lengths share without bias.
        - ``"num_layers"``, ``"num_heads"``, ``"batch_size"``, ``"seq_len"``: ints.
        - ``"tolerance"``: the scale-aware tolerance used, float.

    Raises:
        ValueError: an empty or ``None`` attentions (a model run without ``output_attentions=True`` or with an
            attention implementation that returns no weights), layers of different shapes, a bad
            ``max_distance``, special ids without ``input_ids`` or any invalid input that
            :func:`validate_attention` reports (naming the layer).
    """
    layers = _layers_of(attentions)
    measured = measure_attentions(
        layers,
        attention_mask,
        max_distance=max_distance,
        tolerance=tolerance,
        input_ids=input_ids,
        special_token_ids=special_token_ids,
    )
    accumulator = AttentionAccumulator()
    accumulator.add(measured, as_attention_tensor(layers[0]).shape[-1], {"tolerance": _check_tolerance(tolerance)})
    return accumulator.summary()

"""Log-spaced distance bins of attention: the full-range profile of docs/metrics.md.

Bin 0 is the query itself; bin b (b = 1 .. `bins_per_side`) holds the keys at |j - i| in [2^(b-1), 2^b - 1], to
the left (negative b) and to the right (positive b), so a [2M+1] table covers every distance of a length-T row.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor


def bins_per_side(seq_len: int) -> int:
    """The log bins on each side of the query that reach distance ``seq_len - 1``: bin b holds |j - i| in
    [2^(b-1), 2^b - 1], so b runs to the bit length of seq_len - 1."""
    return (seq_len - 1).bit_length()


@lru_cache(maxsize=8)
def log_bin_index(seq_len: int, device: torch.device) -> Tensor:
    """[T*T] the column of each (i, j) in the centred [2M+1] log-bin table: M + sign(j - i) * bit_length(|j - i|)."""
    positions = torch.arange(seq_len, device=device)
    offsets = positions[None, :] - positions[:, None]
    bit_length = torch.frexp(offsets.abs().to(torch.float64)).exponent.to(torch.int64)  # 0 for 0, 1 for 1, 2 for 2-3
    return (bins_per_side(seq_len) + offsets.sign() * bit_length).reshape(-1)


def chunk_log_bin_totals(flat: Tensor, seq_len: int) -> Tensor:
    """[C, 2M+1]: the attention each matrix puts in each log bin (padding is zero, so only real pairs count)."""
    index = log_bin_index(seq_len, flat.device)
    totals = flat.new_zeros(flat.shape[0], 2 * bins_per_side(seq_len) + 1)
    return totals.scatter_add_(1, index.expand(flat.shape[0], -1), flat)


def log_bin_pairs(real_tokens: Tensor, seq_len: int) -> Tensor:
    """[N, 2M+1] the number of (query, key) pairs of a sequence of n real tokens in each log bin: distance d has
    n - d pairs on each side, so a bin [low, high] holds sum_{d=low}^{min(high, n-1)} (n - d)."""
    lows = 2.0 ** torch.arange(bins_per_side(seq_len), dtype=torch.float64, device=real_tokens.device)
    tokens = real_tokens[:, None]
    reach = torch.minimum(2 * lows - 1, tokens - 1)
    width = (reach - lows + 1).clamp_min(0)
    one_side = width * tokens - (lows + reach) * width / 2
    return torch.cat((one_side.flip(-1), tokens, one_side), dim=-1)

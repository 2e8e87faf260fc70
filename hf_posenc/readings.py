"""How a number is read: p-values that hold at the small numbers of runs people train, a correction for testing many
pairs at once, and the comparison of differences between runs with the noise between seeds.

- `permutation_correlation(x, y, method)`: Spearman or Pearson with a two-sided permutation p-value, exact (every
  ordering enumerated) up to `EXACT_UP_TO` points, else from a seeded Monte Carlo sample of orderings.
- `holm(p_values)`: Holm's step-down adjustment for a family of tests (controls the family-wise error rate).
- `seed_noise(values_by_run)`: whether runs differ by more than their seeds do (one-way ANOVA over seeds).
- `majority_label(labels)` and `chance_verdict(score, chance, ...)`: the score of always answering the most frequent
  label of the sample, and whether a score beats it by more than its noise ("not above chance" otherwise).
- `baseline_verdict(score, baseline, ...)`: whether a pretrained model's score beats a randomly initialised model's,
  fine-tuned the same way on the same sample, by more than the noise of the difference.

scipy's default Spearman p-value is asymptotic and far too small at n = 5 (Spearman 1 gives p = 1.4e-24 where the
exact p is 2/120); these are the ones a report should print.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "ABOVE_BASELINE",
    "ABOVE_CHANCE",
    "EXACT_UP_TO",
    "MONTE_CARLO_ORDERINGS",
    "NOISE_MULTIPLE",
    "NOT_ABOVE_BASELINE",
    "NOT_ABOVE_CHANCE",
    "baseline_verdict",
    "chance_verdict",
    "holm",
    "majority_label",
    "permutation_correlation",
    "seed_noise",
]

EXACT_UP_TO = 8  # 8! = 40,320 orderings: enumerated in a few milliseconds
MONTE_CARLO_ORDERINGS = 100_000  # above that, p is estimated to about +-0.002 at p = 0.05


def _standardised(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean()
    return centred / np.sqrt((centred**2).sum())


def permutation_correlation(
    x: Sequence[float], y: Sequence[float], method: str = "spearman", seed: int = 0
) -> tuple[float | None, float | None, bool]:
    """(correlation, two-sided permutation p-value, whether p is exact). The p-value is the share of orderings of
    `y` against `x` whose correlation is at least as far from 0 as the observed one; None when either variable is
    constant or there are fewer than 3 points."""
    from scipy.stats import rankdata

    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson'; got {method!r}.")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"x and y must be paired: {len(x)} values against {len(y)}.")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None, False
    if method == "spearman":
        x, y = rankdata(x), rankdata(y)
    a, b = _standardised(x), _standardised(y)
    observed = float(np.clip(a @ b, -1.0, 1.0))
    exact = len(x) <= EXACT_UP_TO
    if exact:
        orderings = np.array(list(itertools.permutations(range(len(x)))))
    else:
        rng = np.random.default_rng(seed)
        orderings = rng.permuted(np.tile(np.arange(len(x)), (MONTE_CARLO_ORDERINGS, 1)), axis=1)
    permuted = b[orderings] @ a
    # A tolerance, so that orderings tying the observed value (rank correlations take few values) count as extreme.
    extreme = int((np.abs(permuted) >= abs(observed) - 1e-12).sum())
    p_value = extreme / len(orderings) if exact else (extreme + 1) / (len(orderings) + 1)
    return observed, min(1.0, p_value), exact


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values for one family of tests (None entries are not tests and stay None): the i-th
    smallest of m p-values is multiplied by m - i + 1, then made monotone."""
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, p * (len(tested) - rank)))
        adjusted[index] = running
    return adjusted


def seed_noise(values_by_run: Mapping[str, Sequence[float]], significance: float = 0.05) -> dict:
    """Do the runs differ by more than their seeds do? One-way ANOVA of the per-seed values grouped by run.

    Returns the standard deviation of the run means (`between_std`), the pooled standard deviation within runs
    (`within_std`, over seeds), the F-test's p-value and a `verdict`: "differ beyond seed noise", "within seed noise"
    (the differences between runs cannot be told apart from the seeds' own), or "seed noise unknown" (one seed per
    run: nothing to compare with)."""
    from scipy.stats import f_oneway

    groups = [list(values) for values in values_by_run.values() if len(values) > 0]
    means = [statistics.fmean(group) for group in groups]
    within_df = sum(len(group) - 1 for group in groups)
    result = {
        "runs": len(groups),
        "between_std": statistics.stdev(means) if len(means) > 1 else None,
        "within_std": None,
        "p": None,
        "verdict": "seed noise unknown",
    }
    if len(groups) < 2 or within_df == 0:
        return result
    pooled = sum(sum((value - mean) ** 2 for value in group) for group, mean in zip(groups, means)) / within_df
    result["within_std"] = math.sqrt(pooled)
    if pooled == 0:  # every seed of every run agrees: any difference between runs is beyond the (zero) noise
        result["p"] = 0.0 if result["between_std"] else 1.0
    else:
        result["p"] = float(f_oneway(*groups).pvalue)
    result["verdict"] = "differ beyond seed noise" if result["p"] < significance else "within seed noise"
    return result


ABOVE_CHANCE = "above chance"
NOT_ABOVE_CHANCE = "not above chance"
NOISE_MULTIPLE = 2.0  # a score must beat chance by more than twice its noise (about a one-sided 98% margin)


def majority_label(labels: Sequence):
    """The most frequent label of a sample (the first one seen, on a tie): what a model that learned nothing but the
    class balance answers. Score it with the task's own metric to get the sample's chance level."""
    from collections import Counter

    if len(labels) == 0:
        raise ValueError("majority_label needs at least one label.")
    counts = Counter(labels)
    return max(counts, key=counts.get)


def chance_verdict(
    score: float | None, chance: float | None, *, seed_std: float | None = None, n: int | None = None
) -> dict:
    """Whether `score` beats the `chance` level of the same sample by more than its noise, for a metric where higher
    is better. The noise is the standard deviation over seeds when there are several (`seed_std`), else the standard
    error of a chance-level accuracy on `n` examples, sqrt(chance (1 - chance) / n); a score must exceed chance by
    `NOISE_MULTIPLE` times it. Returns chance, margin, noise, where the noise came from and the verdict:
    `ABOVE_CHANCE`, `NOT_ABOVE_CHANCE`, or "unknown" when the score, the chance level or the noise is missing."""
    result = {"chance": chance, "margin": None, "noise": None, "noise_from": None, "verdict": "unknown"}
    if score is None or chance is None or not math.isfinite(score) or not math.isfinite(chance):
        return result
    result["margin"] = score - chance
    if seed_std is not None and math.isfinite(seed_std):
        result["noise"], result["noise_from"] = seed_std, "seeds"
    elif n and 0 <= chance <= 1:
        result["noise"], result["noise_from"] = math.sqrt(chance * (1 - chance) / n), "binomial"
    else:
        return result
    above = result["margin"] > NOISE_MULTIPLE * result["noise"]
    result["verdict"] = ABOVE_CHANCE if above else NOT_ABOVE_CHANCE
    return result


ABOVE_BASELINE = "above random init"
NOT_ABOVE_BASELINE = "not above random init"


def baseline_verdict(
    score: float | None,
    baseline: float | None,
    *,
    score_std: float | None = None,
    baseline_std: float | None = None,
    n: int | None = None,
) -> dict:
    """Whether `score` (a pretrained model fine-tuned on a task) beats `baseline` (a randomly initialised model of
    the same size fine-tuned the same way, on the same sample) by more than `NOISE_MULTIPLE` times the noise of
    their difference, for a metric where higher is better. The noise is sqrt(score_std^2 + baseline_std^2) when
    both standard deviations over seeds are known, else the binomial standard error of the difference of two
    accuracies on `n` examples each, sqrt((s (1 - s) + b (1 - b)) / n). Returns baseline, margin, noise, where the
    noise came from and the verdict: `ABOVE_BASELINE`, `NOT_ABOVE_BASELINE`, or "unknown" when a number is missing."""
    result = {"baseline": baseline, "margin": None, "noise": None, "noise_from": None, "verdict": "unknown"}
    if score is None or baseline is None or not math.isfinite(score) or not math.isfinite(baseline):
        return result
    result["margin"] = score - baseline
    stds = (score_std, baseline_std)
    if all(std is not None and math.isfinite(std) for std in stds):
        result["noise"], result["noise_from"] = math.hypot(*stds), "seeds"
    elif n and 0 <= score <= 1 and 0 <= baseline <= 1:
        variance = (score * (1 - score) + baseline * (1 - baseline)) / n
        result["noise"], result["noise_from"] = math.sqrt(variance), "binomial"
    else:
        return result
    above = result["margin"] > NOISE_MULTIPLE * result["noise"]
    result["verdict"] = ABOVE_BASELINE if above else NOT_ABOVE_BASELINE
    return result

"""The study's statistics over its rows: which values may enter a correlation, the correlations themselves, the
differences between runs against seed noise, and which (property, score) pairs vary enough to plot.

- `chance_exclusions(rows, scores)`: the (run, score) values whose verdict is "not above chance";
- `correlations(rows, properties, scores, excluded_scores=...)`: Spearman and Pearson with permutation p-values
  (exact at small n) and their Holm adjustment over the table, bootstrap intervals that resample runs, and the
  partial correlation of each property controlling for the other; a score in `excluded_scores` (a task pretraining
  does not help) is not tested, with its reason;
- `noise_table(units, scores)`: whether the runs differ by more than their seeds do, score by score;
- `varying_pairs(rows, noise, properties, scores)`: the pairs whose property and score both vary beyond noise, and
  why each other pair is left out.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ..readings import NOT_ABOVE_CHANCE, holm, permutation_correlation, seed_noise
from .rows import PROPERTIES, number, shared_seeds, verdict_column
from .spec import StudySpec

__all__ = [
    "CONTROL",
    "MIN_RUNS",
    "at_chance",
    "chance_exclusions",
    "correlations",
    "noise_table",
    "score_columns",
    "varying_pairs",
]

# The property each property's partial correlation controls for.
CONTROL = {"locality": "symmetry", "symmetry": "locality", "symmetry_scale_aware": "locality"}
MIN_RUNS = 3  # fewer runs than this make no correlation


def score_columns(spec: StudySpec, rows: list[dict[str, Any]]) -> list[str]:
    """The scores correlated with the properties: held-out perplexity after pretraining, each task's main metric,
    the probes' accuracy on the original SNLI test set and every probe delta."""
    from ..tasks.registry import get_task

    columns = ["perplexity"] + [f"{task.name}_{get_task(task.name).main_metric}" for task in spec.tasks]
    if spec.probes is not None:
        columns.append("probe_original")
        columns += sorted({key for row in rows for key in row if key.startswith("probe_delta_") and key[-4:] != "_std"})
    return columns


def at_chance(row: dict[str, Any], score: str) -> bool:
    """Whether the run's `score` is "not above chance" (its verdict column says so)."""
    return row.get(verdict_column(score)) == NOT_ABOVE_CHANCE


def chance_exclusions(rows: list[dict[str, Any]], scores: list[str]) -> list[dict[str, Any]]:
    """The (run, score) values left out of the correlations because they are not above chance (the run's verdict
    for that score, `verdict_column`): ``{"run", "score", "value"}`` for each, in the order of `scores` then rows.
    Their raw values stay in the rows (and study_results.csv)."""
    return [
        {"run": row["run"], "score": score, "value": row.get(score)}
        for score in scores
        for row in rows
        if number(row.get(score)) is not None and at_chance(row, score)
    ]


def noise_table(units, scores: list[str], significance: float = 0.05) -> list[dict[str, Any]]:
    """For each score: do the runs differ by more than their seeds do (over the shared seeds)? See
    `readings.seed_noise`. ``seeds`` is the number of seeds each run's mean is over."""
    compared = shared_seeds(units)
    table = []
    for score in scores:
        values_by_run = {}
        for run, by_seed in units.items():
            numbers = [number(by_seed[seed][0].get(score)) for seed in compared if seed in by_seed]
            if numbers and all(value is not None for value in numbers):
                values_by_run[run] = numbers
        table.append({"score": score, "seeds": len(compared), **seed_noise(values_by_run, significance)})
    return table


def _pairs(rows, x: str, y: str) -> tuple[list[float], list[float], list[str]]:
    xs, ys, names = [], [], []
    for row in rows:
        a, b = number(row.get(x)), number(row.get(y))
        if a is not None and b is not None:
            xs.append(a)
            ys.append(b)
            names.append(row["run"])
    return xs, ys, names


def _partial(x, y, z, seed: int) -> tuple[float | None, float | None]:
    """Pearson correlation of x and y controlling for z (the residuals of linear fits on z), with the permutation
    p-value of the residuals' correlation."""
    import numpy as np

    x, y, z = (np.asarray(values, dtype=float) for values in (x, y, z))
    if len(x) < 4 or np.ptp(z) == 0:
        return None, None
    residual_x = x - np.polyval(np.polyfit(z, x, 1), z)
    residual_y = y - np.polyval(np.polyfit(z, y, 1), z)
    if np.allclose(residual_x, 0) or np.allclose(residual_y, 0):
        return None, None
    r, p, _ = permutation_correlation(residual_x, residual_y, "pearson", seed)
    return r, p


def _bootstrap(x, y, method: str, resamples: int, seed: int, level: float) -> tuple[float | None, float | None]:
    """Percentile interval of the correlation over `resamples` resamplings of the runs (resamples where either
    variable is constant are left out)."""
    import numpy as np
    from scipy import stats

    if resamples == 0:
        return None, None
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    function = stats.spearmanr if method == "spearman" else stats.pearsonr
    values = []
    for _ in range(resamples):
        index = rng.integers(0, len(x), len(x))
        if np.ptp(x[index]) == 0 or np.ptp(y[index]) == 0:
            continue
        value = function(x[index], y[index]).statistic
        if not math.isnan(value):
            values.append(value)
    if len(values) < 10:
        return None, None
    low, high = np.percentile(values, [100 * level / 2, 100 * (1 - level / 2)])
    return float(low), float(high)


def correlations(
    rows: list[dict[str, Any]],
    properties=PROPERTIES,
    scores: list[str] | None = None,
    *,
    significance: float = 0.05,
    bootstrap: int = 1000,
    seed: int = 0,
    excluded_scores: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One dict per (property, score): n, Spearman and Pearson with permutation p-values (exact up to
    `readings.EXACT_UP_TO` runs), the same p-values Holm-adjusted over every tested (property, score) pair of the
    table (`<method>_p_holm`), (1 - significance) bootstrap intervals, and the partial Pearson correlation
    controlling for `CONTROL[property]`. A run whose score is not above chance (`chance_exclusions`) is left out of
    that score's correlations; ``excluded_at_chance`` names those runs. A score of `excluded_scores` is not tested
    at all (n = 0, no p-value, so it does not count in Holm's correction); ``excluded_reason`` says why."""
    import numpy as np

    excluded_scores = excluded_scores or {}
    results = []
    for prop in properties:
        for score in scores or []:
            excluded = [row["run"] for row in rows if number(row.get(score)) is not None and at_chance(row, score)]
            counted = [row for row in rows if not at_chance(row, score)] if score not in excluded_scores else []
            xs, ys, _ = _pairs(counted, prop, score)
            entry: dict[str, Any] = {
                "property": prop,
                "score": score,
                "n": len(xs),
                "excluded_at_chance": " ".join(excluded),
                "excluded_reason": excluded_scores.get(score, ""),
                "p_exact": None,
            }
            for method in ("spearman", "pearson"):
                entry.update({method: None, f"{method}_p": None, f"{method}_ci_low": None, f"{method}_ci_high": None})
            entry.update({"partial": None, "partial_p": None, "partial_control": CONTROL.get(prop)})
            usable = len(xs) >= MIN_RUNS and np.ptp(xs) > 0 and np.ptp(ys) > 0
            if usable:
                for method in ("spearman", "pearson"):
                    entry[method], entry[f"{method}_p"], entry["p_exact"] = permutation_correlation(
                        xs, ys, method, seed
                    )
                    low, high = _bootstrap(xs, ys, method, bootstrap, seed, significance)
                    entry[f"{method}_ci_low"], entry[f"{method}_ci_high"] = low, high
                control = CONTROL.get(prop)
                triples = [
                    (row[prop], row[score], row[control])
                    for row in counted
                    if all(number(row.get(key)) is not None for key in (prop, score, control))
                ]
                if triples:
                    entry["partial"], entry["partial_p"] = _partial(*zip(*triples), seed)
                    entry["partial_n"] = len(triples)
            results.append(entry)
    for method in ("spearman", "pearson", "partial"):
        for entry, adjusted in zip(results, holm([entry[f"{method}_p"] for entry in results])):
            entry[f"{method}_p_holm"] = adjusted
    return results


def _variation(rows, column: str, noise: dict[str, dict], excluded_scores: dict[str, str]) -> str | None:
    """Why `column` cannot be plotted against another (None when it varies beyond its noise over enough runs)."""
    if column in excluded_scores:
        return excluded_scores[column]
    values = [value for row in rows if (value := number(row.get(column))) is not None and not at_chance(row, column)]
    at_chance_runs = sum(number(row.get(column)) is not None and at_chance(row, column) for row in rows)
    if len(values) < MIN_RUNS:
        if at_chance_runs:
            return f"{column}: {len(values)} run(s) above chance ({at_chance_runs} not above chance)"
        return f"{column}: {len(values)} run(s) with a value (a panel needs {MIN_RUNS})"
    if max(values) == min(values):
        return f"{column}: every run has the same value ({values[0]:.4g})"
    common, count = Counter(values).most_common(1)[0]
    if count > len(values) / 2:  # most runs give one answer (a classifier stuck on one class): a few points carry it
        return (
            f"{column}: {count} of {len(values)} runs have the same value ({common:.4g}), so a panel would rest on "
            f"the other {len(values) - count}"
        )
    reading = noise.get(column, {})
    if reading.get("verdict") == "within seed noise":
        return (
            f"{column}: the runs' spread (std {reading['between_std']:.3g}) is within seed noise "
            f"(std {reading['within_std']:.3g} over seeds, ANOVA p = {reading['p']:.3g})"
        )
    return None


def varying_pairs(
    rows: list[dict[str, Any]],
    noise: list[dict[str, Any]],
    properties,
    scores: list[str],
    excluded_scores: dict[str, str] | None = None,
) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """The (property, score) pairs worth a scatter panel: both vary beyond their seed noise (with one seed: no value
    is shared by more than half of the runs) over at least `MIN_RUNS` runs whose score is not at chance. Returns those pairs and, for every
    other pair, ``{"property", "score", "reason"}``."""
    by_score = {entry["score"]: entry for entry in noise}
    excluded_scores = excluded_scores or {}
    why = {column: _variation(rows, column, by_score, excluded_scores) for column in [*properties, *scores]}
    plotted, left_out = [], []
    for prop in properties:
        for score in scores:
            reasons = [reason for reason in (why[prop], why[score]) if reason]
            if reasons:
                left_out.append({"property": prop, "score": score, "reason": "; ".join(reasons)})
            else:
                plotted.append((prop, score))
    return plotted, left_out

"""The plain-language summary of a study report: which runs were compared, the best run on each score (never one
that is not above chance, and every run within seed noise of it named as tied), what the correlations left out and
why, and which correlations survive Holm's correction."""

from __future__ import annotations

import math
from typing import Any

from ..readings import NOISE_MULTIPLE
from .correlate import MIN_RUNS, at_chance, chance_exclusions
from .rows import finished_seeds, number, shared_seeds, verdict_column

__all__ = ["best_line", "chance_lines", "random_init_lines", "summary_lines"]

RESULTS_CSV = "study_results.csv"


def format_value(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _difference_noise(reading: dict) -> float | None:
    """The standard deviation of the difference of two run means over the compared seeds (from the pooled seed
    noise), or None when the seed noise is unknown."""
    within, seeds = reading.get("within_std"), reading.get("seeds")
    if within is None or not seeds:
        return None
    return within * math.sqrt(2 / seeds)


def best_line(label: str, rows, column: str, verdicts, lowest: bool = False) -> str:
    """The best run on `column` among the runs whose value is above chance (a value that is not above chance is not
    a result and is never ranked), every run tied with it (equal, or within twice the seed noise of a difference),
    and whether the runs can be told apart from seed noise at all. A constant score (a classifier that learned to
    answer one class, say) names no best run and correlates with nothing."""
    ranked = [row for row in rows if not at_chance(row, column)]
    unranked = [row["run"] for row in rows if at_chance(row, column)]
    not_ranked = f" Not ranked, not above chance: {', '.join(unranked)}." if unranked else ""
    if not ranked:
        return f"- {label}: no run is above chance ({len(unranked)} are not), so none is ranked."
    values = [row[column] for row in ranked]
    if len(ranked) > 1 and len(set(values)) == 1:
        return (
            f"- {label}: every run scores {values[0]:.4g} (a constant: it ranks no run and correlates with "
            f"nothing).{not_ranked}"
        )
    best_value = (min if lowest else max)(values)
    best = [row["run"] for row in ranked if row[column] == best_value]
    std = ranked[values.index(best_value)].get(f"{column}_std")
    line = f"- {label}: {' and '.join(best)} ({best_value:.4g}{f' ± {std:.2g}' if std is not None else ''})"
    line += " tie." if len(best) > 1 else "."
    reading = verdicts.get(column, {})
    noise = _difference_noise(reading)
    if reading.get("verdict") == "within seed noise":
        line += (
            f" The runs cannot be told apart from seed noise on this score, so no run is better: all {len(ranked)} "
            "are tied."
        )
    elif noise is not None:
        close = [
            row["run"]
            for row in ranked
            if row["run"] not in best and abs(row[column] - best_value) <= NOISE_MULTIPLE * noise
        ]
        if close:
            line += (
                f" Tied within seed noise with {', '.join(close)} (less than {NOISE_MULTIPLE:g} x {noise:.2g}, the "
                "noise of a difference between two runs, apart)."
            )
    elif reading.get("verdict") == "seed noise unknown":
        line += " One seed per run: the seed noise is unknown, so the ranking may not hold."
    return line + not_ranked


def chance_lines(rows, scores: list[str]) -> list[str]:
    """What the correlations left out as not above chance, score by score; a score no run beats chance on cannot
    test the claim."""
    excluded: dict[str, list[str]] = {}
    for item in chance_exclusions(rows, scores):
        excluded.setdefault(item["score"], []).append(item["run"])
    lines = []
    for score, runs in excluded.items():
        valued = [row for row in rows if number(row.get(score)) is not None]
        if len(runs) == len(valued):
            lines.append(
                f"- {score}: not above chance in every run ({', '.join(runs)}): left out of the correlations, so this "
                "score cannot test the claim."
            )
        else:
            lines.append(
                f"- {score}: not above chance in {', '.join(runs)}: left out of its correlations (the values stay in "
                f"{RESULTS_CSV}, with the verdict in {verdict_column(score)})."
            )
    return lines


def random_init_lines(pretraining_help: dict[str, dict]) -> list[str]:
    """Per task score: whether pretraining helped it, against the randomly initialised models fine-tuned alike."""
    lines = []
    for column, entry in pretraining_help.items():
        baseline = ", ".join(f"{variant} {format_value(value, 3)}" for variant, value in entry["baseline"].items())
        if entry["helps"] is False:
            lines.append(
                f"- {column}: {entry['reason']} (random init: {baseline}); left out of the correlations, since it "
                "cannot say what pretraining gave the attention."
            )
        elif entry["helps"]:
            others = entry["not_above"]
            lines.append(
                f"- {column}: {len(entry['above'])} run(s) beat the random-init baseline ({baseline}) beyond noise"
                + (f"; not above it: {', '.join(others)}." if others else ".")
            )
        else:
            lines.append(f"- {column}: no run could be compared with a random-init baseline (missing or unknown).")
    return lines


def summary_lines(spec, rows, table, noise, units, significance: float, pretraining_help: dict) -> list[str]:
    from ..tasks.registry import get_task

    done = [row for row in rows if row["status"] == "ok"]
    lines = [f"- {len(done)} of {len(rows)} runs are complete; {sum(r['status'] == 'failed' for r in rows)} failed."]
    compared = shared_seeds(units)
    left_out = [
        f"{run} seed {seed}" for run, seeds in finished_seeds(units).items() for seed in seeds if seed not in compared
    ]
    if compared:
        lines.append(
            f"- Runs are compared over seed(s) {', '.join(map(str, compared))}, the ones every run has finished"
            + (f"; left out: {', '.join(left_out)}." if left_out else ".")
        )
    elif left_out:
        lines.append("- No seed is finished by every run, so no run is compared with another (the seed also chooses "
                     "the held-out text): finish the same seeds.")  # fmt: skip
    verdicts = {entry["score"]: entry for entry in noise}
    ranked = [row for row in done if number(row.get("perplexity")) is not None]
    if ranked:
        lines.append(best_line("Lowest held-out perplexity", ranked, "perplexity", verdicts, lowest=True))
    for task in spec.tasks:
        column = f"{task.name}_{get_task(task.name).main_metric}"
        scored = [row for row in done if number(row.get(column)) is not None]
        if scored:
            lines.append(best_line(f"Best on {task.name} ({column})", scored, column, verdicts))
    if spec.probes is not None:
        scored = [row for row in done if number(row.get("probe_original")) is not None]
        if scored:
            lines.append(best_line("Best SNLI accuracy in the probes", scored, "probe_original", verdicts))
    lines += random_init_lines(pretraining_help)
    lines += chance_lines(rows, list(dict.fromkeys(entry["score"] for entry in table)))
    measured = [entry for entry in table if entry["spearman"] is not None]
    significant = [
        entry
        for entry in measured
        if any((entry.get(f"{method}_p_holm") or 1) < significance for method in ("spearman", "pearson"))
    ]
    if not measured:
        lines.append(f"- No correlation could be computed (it needs at least {MIN_RUNS} runs with varying values).")
    elif not significant:
        lines.append(
            f"- None of the {len(measured)} correlations is significant at the {significance} level after Holm's "
            "correction for testing them all."
        )
    for entry in significant:
        noise_note = ""
        if verdicts.get(entry["score"], {}).get("verdict") == "within seed noise":
            noise_note = " But the runs' differences on this score are within its seed noise: the ordering it rests on is not reliable."
        elif verdicts.get(entry["score"], {}).get("verdict") == "seed noise unknown":
            noise_note = " The seed noise of this score is unknown (one seed per run)."
        lines.append(
            f"- {entry['property']} vs {entry['score']}: Spearman {format_value(entry['spearman'], 3)} "
            f"(p = {format_value(entry['spearman_p'], 3)}, Holm-adjusted {format_value(entry['spearman_p_holm'], 3)}), "
            f"Pearson {format_value(entry['pearson'], 3)} (Holm-adjusted p = {format_value(entry['pearson_p_holm'], 3)}), "
            f"n = {entry['n']}: significant at the {significance} level after correction.{noise_note}"
        )
    return lines

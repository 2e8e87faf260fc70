"""The study's results: one row per run, the correlations of attention properties with downstream scores, the
differences between runs against seed noise, plots, and a Markdown report.

- `collect_rows(spec, output)`: per run, the mean (and, as ``<column>_std``, the sample standard deviation) of every
  measurement over the seeds every run has finished (`shared_seeds`), plus its settings and status;
- `correlations(rows, properties, scores)`: Spearman and Pearson with permutation p-values (exact at small n) and
  their Holm adjustment over the table, bootstrap confidence intervals that resample runs, the number of runs, and
  the partial correlation of each property controlling for the other (locality for a symmetry, the reference
  symmetry for locality); values that are not above chance (`chance_exclusions`) are left out;
- `chance_exclusions(rows, scores)`: the (run, score) values whose verdict (``<score>_verdict``, ``probe_verdict``
  for every probe score) is "not above chance": a score that does not beat chance tests nothing;
- `noise_table(units, scores)`: whether the runs differ by more than their seeds do, score by score;
- `write_report(spec, output)`: ``study_results.csv``/``.json``, ``study_correlations.csv``, ``plots/*.png`` and
  ``study_report.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

from ..readings import (
    ABOVE_CHANCE,
    EXACT_UP_TO,
    MONTE_CARLO_ORDERINGS,
    NOT_ABOVE_CHANCE,
    holm,
    permutation_correlation,
    seed_noise,
)
from ..results import FinetuneResult, PretrainResult, ProbeResult
from ..storage import atomic_output
from .layout import ERROR_FILE, PLOTS_FOLDER, POSITION_FILE, TRAINING_LOG, read_json, step_folders, unit_folder
from .spec import StudySpec

__all__ = [
    "CORRELATIONS_CSV",
    "PROPERTIES",
    "REPORT_FILE",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "VERDICT_SUFFIX",
    "chance_exclusions",
    "collect_rows",
    "correlations",
    "score_columns",
    "write_report",
]

RESULTS_CSV = "study_results.csv"
RESULTS_JSON = "study_results.json"
CORRELATIONS_CSV = "study_correlations.csv"
REPORT_FILE = "study_report.md"
# The attention properties the study correlates with scores (measured on held-out text after pretraining), and the
# property each one's partial correlation controls for.
PROPERTIES = ("locality", "symmetry", "symmetry_scale_aware")
CONTROL = {"locality": "symmetry", "symmetry": "locality", "symmetry_scale_aware": "locality"}
MIN_RUNS = 3  # fewer runs than this make no correlation
# A row's `<score>_verdict` column: whether the score beat chance ("above chance", "not above chance", "unknown").
# Every probe score (probe_original, probe_delta_*) shares the probe model's verdict, `probe_verdict`.
VERDICT_SUFFIX = "_verdict"
PROBE_VERDICT = "probe" + VERDICT_SUFFIX


def verdict_column(score: str) -> str:
    """The row column that holds `score`'s chance verdict."""
    return PROBE_VERDICT if score.startswith("probe_") else f"{score}{VERDICT_SUFFIX}"


def _combined_verdict(verdicts: list[Any]) -> str | None:
    """A run's verdict over its compared seeds: "not above chance" when any seed's score is (the mean then holds a
    number that is not a result), "above chance" when every seed's is, else "unknown"; None when no seed has one."""
    known = [verdict for verdict in verdicts if isinstance(verdict, str)]
    if not known:
        return None
    if NOT_ABOVE_CHANCE in known:
        return NOT_ABOVE_CHANCE
    if len(known) == len(verdicts) and all(verdict == ABOVE_CHANCE for verdict in known):
        return ABOVE_CHANCE
    return "unknown"


# ------------------------------------------------------------------------------------------------ rows
def _unit_values(spec: StudySpec, unit: Path) -> tuple[dict[str, Any], list[str]]:
    """The numbers one (run, seed) produced (and, as ``<score>_verdict``, whether its scores beat chance), and its
    failed steps as 'step: error'."""
    from ..tasks.registry import get_task

    values: dict[str, Any] = {}
    errors = []
    steps = step_folders(unit, [task.name for task in spec.tasks])
    for step, folder in steps.items():
        error = read_json(folder / ERROR_FILE)
        if error is not None:
            errors.append(f"{step}: {error.get('error')}")
    pretrain = steps["pretrain"]
    if PretrainResult.exists_in(pretrain):
        result = PretrainResult.load(pretrain)
        for key in ("train_steps", "train_loss", "eval_loss", "perplexity", *PROPERTIES):
            values[key] = getattr(result, key)
    log = read_json(pretrain / TRAINING_LOG)
    if log is not None:
        values["parameters"] = log.get("parameters")
        values["tokens_per_second"] = log.get("tokens_per_second")
    for task in spec.tasks:
        folder = steps[f"task:{task.name}"]
        if FinetuneResult.exists_in(folder):
            result = FinetuneResult.load(folder)
            for metric, numbers in result.tasks.get(task.name, {}).get("report", {}).items():
                values[f"{task.name}_{metric}"] = numbers.get("mean")
            if task.name in result.tasks:  # the verdict is the main metric's, the score the study correlates
                main_metric = f"{task.name}_{get_task(task.name).main_metric}"
                values[f"{main_metric}{VERDICT_SUFFIX}"] = result.task_verdict(task.name)
    if spec.probes is not None and ProbeResult.exists_in(steps["probes"]):
        probe = ProbeResult.load(steps["probes"])
        for name, accuracy in probe.probes.items():
            values[f"probe_{name}"] = accuracy
        for name, delta in probe.deltas.items():
            values[f"probe_delta_{name}"] = delta
        values["probe_chance"] = probe.chance
        values[PROBE_VERDICT] = probe.verdict
    if spec.extrapolation is not None:
        from ..analysis.extrapolation import ExtrapolationResult

        if ExtrapolationResult.exists_in(steps["extrapolation"]):
            for item in ExtrapolationResult.load(steps["extrapolation"]).measurements:
                values[f"extrapolation_loss_{item.length}"] = item.loss
    if spec.position_attention is not None:
        position = read_json(steps["position_attention"] / POSITION_FILE)
        if position is not None and position.get("applicable"):
            for key in PROPERTIES:
                values[f"position_{key}"] = position.get(key)
    return values, errors


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def collect_units(
    spec: StudySpec, output: str | Path
) -> dict[str, dict[int, tuple[dict[str, float | None], list[str]]]]:
    """run name -> seed -> (its numbers, its failed steps), for every (run, seed) of the spec."""
    output = Path(output)
    return {
        run.name: {seed: _unit_values(spec, unit_folder(output, run.name, seed)) for seed in run.seeds}
        for run in spec.runs
    }


def finished_seeds(units) -> dict[str, list[int]]:
    """run name -> the seeds whose pretraining finished."""
    return {
        run: [seed for seed, (values, _) in by_seed.items() if "eval_loss" in values] for run, by_seed in units.items()
    }


def shared_seeds(units) -> list[int]:
    """The seeds every run with a finished seed has finished: runs are compared over these only, since the seed also
    chooses the held-out text and the data order (a perplexity on seed 1 and one on seed 2 measure different text)."""
    finished = [set(seeds) for seeds in finished_seeds(units).values() if seeds]
    return sorted(set.intersection(*finished)) if finished else []


def collect_rows(spec: StudySpec, output: str | Path, units=None) -> list[dict[str, Any]]:
    """One row per run of the spec: the mean (and, as ``<column>_std``, the sample standard deviation) of every
    measurement over the seeds that every run shares (`shared_seeds`); runs with nothing done yet are 'pending'."""
    units = collect_units(spec, output) if units is None else units
    compared = shared_seeds(units)
    rows = []
    for run in spec.runs:
        errors = [f"seed {seed} {text}" for seed, (_, unit_errors) in units[run.name].items() for text in unit_errors]
        done = len(finished_seeds(units)[run.name])
        per_seed = [units[run.name][seed][0] for seed in compared if seed in units[run.name]]
        row: dict[str, Any] = {
            "run": run.name,
            "group": run.group,
            "variant": run.variant,
            "settings": json.dumps(run.settings, sort_keys=True),
            **{key: value for key, value in run.grid.items()},
            "seeds": len(run.seeds),
            "seeds_done": done,
            "seeds_compared": " ".join(map(str, compared)) if done else "",
            "status": "failed" if errors else ("ok" if done == len(run.seeds) else "pending"),
            "errors": " | ".join(errors),
        }
        columns = list(dict.fromkeys(key for values in per_seed for key in values))
        for column in columns:
            if column.endswith(VERDICT_SUFFIX):
                row[column] = _combined_verdict([values.get(column) for values in per_seed])
                continue
            numbers = [number for values in per_seed if (number := _number(values.get(column))) is not None]
            row[column] = statistics.fmean(numbers) if numbers else None
            row[f"{column}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else None
        rows.append(row)
    return rows


def noise_table(units, scores: list[str], significance: float = 0.05) -> list[dict[str, Any]]:
    """For each score: do the runs differ by more than their seeds do (over the shared seeds)? See
    `readings.seed_noise`."""
    compared = shared_seeds(units)
    table = []
    for score in scores:
        values_by_run = {}
        for run, by_seed in units.items():
            numbers = [_number(by_seed[seed][0].get(score)) for seed in compared if seed in by_seed]
            if numbers and all(number is not None for number in numbers):
                values_by_run[run] = numbers
        table.append({"score": score, **seed_noise(values_by_run, significance)})
    return table


def score_columns(spec: StudySpec, rows: list[dict[str, Any]]) -> list[str]:
    """The scores correlated with the properties: held-out perplexity after pretraining, each task's main metric,
    the probes' accuracy on the original SNLI test set and every probe delta."""
    from ..tasks.registry import get_task

    columns = ["perplexity"] + [f"{task.name}_{get_task(task.name).main_metric}" for task in spec.tasks]
    if spec.probes is not None:
        columns.append("probe_original")
        columns += sorted({key for row in rows for key in row if key.startswith("probe_delta_") and key[-4:] != "_std"})
    return columns


# ------------------------------------------------------------------------------------------------ statistics
def _at_chance(row: dict[str, Any], score: str) -> bool:
    return row.get(verdict_column(score)) == NOT_ABOVE_CHANCE


def chance_exclusions(rows: list[dict[str, Any]], scores: list[str]) -> list[dict[str, Any]]:
    """The (run, score) values left out of the correlations because they are not above chance (the run's verdict
    for that score, `verdict_column`): ``{"run", "score", "value"}`` for each, in the order of `scores` then rows.
    Their raw values stay in the rows (and study_results.csv)."""
    return [
        {"run": row["run"], "score": score, "value": row.get(score)}
        for score in scores
        for row in rows
        if _number(row.get(score)) is not None and _at_chance(row, score)
    ]


def _pairs(rows, x: str, y: str) -> tuple[list[float], list[float], list[str]]:
    xs, ys, names = [], [], []
    for row in rows:
        a, b = _number(row.get(x)), _number(row.get(y))
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
) -> list[dict[str, Any]]:
    """One dict per (property, score): n, Spearman and Pearson with permutation p-values (exact up to
    `readings.EXACT_UP_TO` runs), the same p-values Holm-adjusted over every (property, score) pair of the table
    (`<method>_p_holm`), (1 - significance) bootstrap intervals, and the partial Pearson correlation controlling for
    `CONTROL[property]`. A run whose score is not above chance (`chance_exclusions`) is left out of that score's
    correlations; ``excluded_at_chance`` names those runs."""
    import numpy as np

    results = []
    for prop in properties:
        for score in scores or []:
            excluded = [row["run"] for row in rows if _number(row.get(score)) is not None and _at_chance(row, score)]
            counted = [row for row in rows if not _at_chance(row, score)]
            xs, ys, _ = _pairs(counted, prop, score)
            entry: dict[str, Any] = {
                "property": prop,
                "score": score,
                "n": len(xs),
                "excluded_at_chance": " ".join(excluded),
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
                    if all(_number(row.get(key)) is not None for key in (prop, score, control))
                ]
                if triples:
                    entry["partial"], entry["partial_p"] = _partial(*zip(*triples), seed)
                    entry["partial_n"] = len(triples)
            results.append(entry)
    for method in ("spearman", "pearson", "partial"):
        for entry, adjusted in zip(results, holm([entry[f"{method}_p"] for entry in results])):
            entry[f"{method}_p_holm"] = adjusted
    return results


# ------------------------------------------------------------------------------------------------ files
def _csv_text(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key)) for key in columns})
    return buffer.getvalue()


def _write(path: Path, text: str) -> Path:
    with atomic_output(path, encoding="utf-8") as handle:
        handle.write(text)
    return path


def _format(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _plots(spec: StudySpec, output: Path, rows, properties, scores) -> list[Path]:
    """Scatter plots, grid heat maps, loss curves and extrapolation curves; none when matplotlib is missing."""
    try:
        from . import plots
    except ImportError:
        return []
    folder = output / PLOTS_FOLDER
    written = []
    try:
        if scores:
            written.append(plots.scatter_grid(rows, properties, scores, folder / "scatter.png"))
        written += plots.grid_heatmaps(spec, rows, scores, folder)
        curves = {
            f"{run.name}-seed{seed}": read_json(unit_folder(output, run.name, seed) / "pretrain" / TRAINING_LOG)
            for run in spec.runs
            for seed in run.seeds
        }
        written.append(plots.loss_curves({name: log for name, log in curves.items() if log}, folder / "loss.png"))
        if spec.extrapolation is not None:
            written.append(plots.extrapolation_curves(rows, spec.extrapolation.lengths, folder / "extrapolation.png"))
    except ImportError:  # matplotlib is an optional extra
        return written
    return [path for path in written if path is not None]


def _summary(spec: StudySpec, rows, table, noise, units, significance: float) -> list[str]:
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
    ranked = [row for row in done if _number(row.get("perplexity")) is not None]
    if ranked:
        lines.append(_best_line("Lowest held-out perplexity", ranked, "perplexity", verdicts, lowest=True))
    for task in spec.tasks:
        column = f"{task.name}_{get_task(task.name).main_metric}"
        scored = [row for row in done if _number(row.get(column)) is not None]
        if scored:
            lines.append(_best_line(f"Best on {task.name} ({column})", scored, column, verdicts))
    if spec.probes is not None:
        scored = [row for row in done if _number(row.get("probe_original")) is not None]
        if scored:
            lines.append(_best_line("Best SNLI accuracy in the probes", scored, "probe_original", verdicts))
    lines += _chance_lines(rows, list(dict.fromkeys(entry["score"] for entry in table)))
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
            f"- {entry['property']} vs {entry['score']}: Spearman {_format(entry['spearman'], 3)} "
            f"(p = {_format(entry['spearman_p'], 3)}, Holm-adjusted {_format(entry['spearman_p_holm'], 3)}), "
            f"Pearson {_format(entry['pearson'], 3)} (Holm-adjusted p = {_format(entry['pearson_p_holm'], 3)}), "
            f"n = {entry['n']}: significant at the {significance} level after correction.{noise_note}"
        )
    return lines


def _chance_lines(rows, scores: list[str]) -> list[str]:
    """What the correlations left out as not above chance, score by score; a score no run beats chance on cannot
    test the claim."""
    excluded: dict[str, list[str]] = {}
    for item in chance_exclusions(rows, scores):
        excluded.setdefault(item["score"], []).append(item["run"])
    lines = []
    for score, runs in excluded.items():
        valued = [row for row in rows if _number(row.get(score)) is not None]
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


def _best_line(label: str, rows, column: str, verdicts, lowest: bool = False) -> str:
    """The best run on `column`, every run tied with it, and whether the runs can be told apart from seed noise. A
    constant score (a classifier that learned to answer one class, say) names no best run and correlates with
    nothing."""
    values = [row[column] for row in rows]
    if len(set(values)) == 1:
        return f"- {label}: every run scores {values[0]:.4g} (a constant: it ranks no run and correlates with nothing)."
    best_value = (min if lowest else max)(values)
    best = [row["run"] for row in rows if row[column] == best_value]
    std = rows[values.index(best_value)].get(f"{column}_std")
    line = f"- {label}: {' and '.join(best)} ({best_value:.4g}{f' ± {std:.2g}' if std is not None else ''})"
    line += " tie." if len(best) > 1 else "."
    verdict = verdicts.get(column, {}).get("verdict")
    if verdict == "within seed noise":
        line += " The runs cannot be told apart from seed noise on this score, so no run is better."
    elif verdict == "seed noise unknown":
        line += " One seed per run: the seed noise is unknown, so the ranking may not hold."
    return line


_TABLE_COLUMNS = ("run", "variant", "status", "parameters", "tokens_per_second", "eval_loss", "perplexity", *PROPERTIES)


def _with_std(row, column: str) -> str:
    std = row.get(f"{column}_std")
    return _format(row.get(column)) + (f" ± {_format(std, 2)}" if isinstance(std, float) else "")


def _markdown_table(headers: list[str], lines: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        + ["| " + " | ".join(line) + " |" for line in lines]
    )


def write_report(spec: StudySpec, output: str | Path, log=print) -> dict[str, Path]:
    """Write the result tables, correlations, plots and study_report.md from whatever results `output` holds."""
    output = Path(output)
    units = collect_units(spec, output)
    rows = collect_rows(spec, output, units)
    scores = score_columns(spec, rows)
    report = spec.report
    table = correlations(
        rows, PROPERTIES, scores, significance=report.significance, bootstrap=report.bootstrap, seed=report.seed
    )
    noise = noise_table(units, [*scores, *PROPERTIES], report.significance)
    written = {
        "csv": _write(output / RESULTS_CSV, _csv_text(rows)),
        "json": _write(
            output / RESULTS_JSON,
            json.dumps(
                {"study": spec.name, "runs": rows, "correlations": table, "seed_noise": noise}, indent=2, default=str
            )
            + "\n",
        ),
        "correlations": _write(output / CORRELATIONS_CSV, _csv_text(table)),
    }
    plot_paths = _plots(spec, output, rows, list(PROPERTIES), scores)
    columns = list(_TABLE_COLUMNS) + [c for c in scores if c not in _TABLE_COLUMNS and any(c in row for row in rows)]
    run_table = _markdown_table(columns, [[_with_std(row, column) for column in columns] for row in rows])
    noise_lines = [
        [
            entry["score"],
            str(entry["runs"]),
            _format(entry["between_std"], 3),
            _format(entry["within_std"], 3),
            _format(entry["p"], 3),
            entry["verdict"],
        ]
        for entry in noise
        if entry["runs"] > 1
    ]
    noise_part = _markdown_table(
        ["score", "runs", "std between runs", "std within runs (seeds)", "ANOVA p", "verdict"], noise_lines
    )
    level = 1 - report.significance
    correlation_table = _markdown_table(
        [
            "property",
            "score",
            "n",
            "Spearman (p; Holm)",
            f"{level:.0%} CI",
            "Pearson (p; Holm)",
            f"{level:.0%} CI",
            "partial (p; Holm)",
            "controls for",
        ],
        [
            [
                entry["property"],
                entry["score"],
                str(entry["n"]),
                f"{_format(entry['spearman'], 3)} ({_format(entry['spearman_p'], 3)}; "
                f"{_format(entry['spearman_p_holm'], 3)})",
                f"[{_format(entry['spearman_ci_low'], 3)}, {_format(entry['spearman_ci_high'], 3)}]",
                f"{_format(entry['pearson'], 3)} ({_format(entry['pearson_p'], 3)}; {_format(entry['pearson_p_holm'], 3)})",
                f"[{_format(entry['pearson_ci_low'], 3)}, {_format(entry['pearson_ci_high'], 3)}]",
                f"{_format(entry['partial'], 3)} ({_format(entry['partial_p'], 3)}; {_format(entry['partial_p_holm'], 3)})",
                str(entry["partial_control"]),
            ]
            for entry in table
        ],
    )
    failures = [f"- {row['run']}: {row['errors']}" for row in rows if row["errors"]]
    text = "\n\n".join(
        part
        for part in (
            f"# Study: {spec.name}",
            f"Pretraining: {spec.pretraining.size} models, {spec.pretraining.max_steps} steps of "
            f"{spec.pretraining.tokens_per_step} tokens each per run, sequence length {spec.pretraining.max_seq_length}.",
            "## Summary\n\n" + "\n".join(_summary(spec, rows, table, noise, units, report.significance)),
            "## Runs (mean ± standard deviation over the compared seeds)\n\n" + run_table,
            "## Differences between runs against seed noise\n\nOne-way ANOVA of the per-seed values grouped by run: "
            "'within seed noise' means the runs' differences on that score cannot be told apart from what changing "
            "the seed does, so neither their ranking nor a correlation with it is reliable.\n\n" + noise_part
            if noise_lines
            else "",
            "## Correlations across runs\n\np-values are permutation p-values (exact, every ordering of the runs, "
            f"up to {EXACT_UP_TO} runs; a seeded sample of {MONTE_CARLO_ORDERINGS:,} orderings above), then Holm-adjusted "
            f"over the {len(table)} pairs of the table. Bootstrap intervals resample runs ({report.bootstrap} "
            "resamples); the partial correlation controls for the other property.\n\n" + correlation_table,
            ("## Failures\n\n" + "\n".join(failures)) if failures else "",
            ("## Plots\n\n" + "\n".join(f"![{path.stem}]({path.relative_to(output)})" for path in plot_paths))
            if plot_paths
            else "",
        )
        if part
    )
    written["report"] = _write(output / REPORT_FILE, text + "\n")
    log(f"wrote {', '.join(str(path) for path in written.values())}")
    return written

"""The study's results: one row per run, the correlations of attention properties with downstream scores, plots,
and a Markdown report.

- `collect_rows(spec, output)`: per run, the mean (and, as ``<column>_std``, the sample standard deviation) over its
  seeds of every measurement, plus its settings and status;
- `correlations(rows, properties, scores)`: Spearman and Pearson (scipy) with p-values, bootstrap confidence
  intervals that resample runs, the number of runs, and the partial correlation of each property controlling for
  the other (locality for a symmetry, the reference symmetry for locality);
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


# ------------------------------------------------------------------------------------------------ rows
def _unit_values(spec: StudySpec, unit: Path) -> tuple[dict[str, float | None], list[str]]:
    """The numbers one (run, seed) produced, and its failed steps as 'step: error'."""
    values: dict[str, float | None] = {}
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
            summary = FinetuneResult.load(folder).tasks.get(task.name)
            for metric, numbers in (summary or {}).get("report", {}).items():
                values[f"{task.name}_{metric}"] = numbers.get("mean")
    if spec.probes is not None and ProbeResult.exists_in(steps["probes"]):
        probe = ProbeResult.load(steps["probes"])
        for name, accuracy in probe.probes.items():
            values[f"probe_{name}"] = accuracy
        for name, delta in probe.deltas.items():
            values[f"probe_delta_{name}"] = delta
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


def collect_rows(spec: StudySpec, output: str | Path) -> list[dict[str, Any]]:
    """One row per run of the spec (mean and std over its seeds); runs with nothing done yet have status 'pending'."""
    output = Path(output)
    rows = []
    for run in spec.runs:
        per_seed, errors, done = [], [], 0
        for seed in run.seeds:
            values, unit_errors = _unit_values(spec, unit_folder(output, run.name, seed))
            per_seed.append(values)
            errors += [f"seed {seed} {text}" for text in unit_errors]
            done += "eval_loss" in values
        row: dict[str, Any] = {
            "run": run.name,
            "group": run.group,
            "variant": run.variant,
            "settings": json.dumps(run.settings, sort_keys=True),
            **{key: value for key, value in run.grid.items()},
            "seeds": len(run.seeds),
            "seeds_done": done,
            "status": "failed" if errors else ("ok" if done == len(run.seeds) else "pending"),
            "errors": " | ".join(errors),
        }
        columns = list(dict.fromkeys(key for values in per_seed for key in values))
        for column in columns:
            numbers = [number for values in per_seed if (number := _number(values.get(column))) is not None]
            row[column] = statistics.fmean(numbers) if numbers else None
            row[f"{column}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else None
        rows.append(row)
    return rows


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
def _pairs(rows, x: str, y: str) -> tuple[list[float], list[float], list[str]]:
    xs, ys, names = [], [], []
    for row in rows:
        a, b = _number(row.get(x)), _number(row.get(y))
        if a is not None and b is not None:
            xs.append(a)
            ys.append(b)
            names.append(row["run"])
    return xs, ys, names


def _finite(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _partial(x, y, z) -> tuple[float | None, float | None]:
    """Pearson partial correlation of x and y controlling for z (residuals of linear fits on z), with its p-value
    on n - 3 degrees of freedom."""
    import numpy as np
    from scipy import stats

    x, y, z = (np.asarray(values, dtype=float) for values in (x, y, z))
    n = len(x)
    if n < 4 or np.ptp(z) == 0:
        return None, None
    residual_x = x - np.polyval(np.polyfit(z, x, 1), z)
    residual_y = y - np.polyval(np.polyfit(z, y, 1), z)
    if np.allclose(residual_x, 0) or np.allclose(residual_y, 0):
        return None, None
    r = float(stats.pearsonr(residual_x, residual_y).statistic)
    r = max(-1.0, min(1.0, r))
    if abs(r) == 1.0:
        return r, 0.0
    t = r * math.sqrt((n - 3) / (1 - r * r))
    return r, float(2 * stats.t.sf(abs(t), n - 3))


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
    """One dict per (property, score): n, Spearman and Pearson with p-values and (1 - significance) bootstrap
    intervals, and the partial Pearson correlation controlling for `CONTROL[property]`."""
    import numpy as np
    from scipy import stats

    results = []
    for prop in properties:
        for score in scores or []:
            xs, ys, _ = _pairs(rows, prop, score)
            entry: dict[str, Any] = {"property": prop, "score": score, "n": len(xs)}
            for method in ("spearman", "pearson"):
                entry.update({method: None, f"{method}_p": None, f"{method}_ci_low": None, f"{method}_ci_high": None})
            entry.update({"partial": None, "partial_p": None, "partial_control": CONTROL.get(prop)})
            usable = len(xs) >= MIN_RUNS and np.ptp(xs) > 0 and np.ptp(ys) > 0
            if usable:
                spearman = stats.spearmanr(xs, ys)
                pearson = stats.pearsonr(xs, ys)
                entry["spearman"], entry["spearman_p"] = _finite(spearman.statistic), _finite(spearman.pvalue)
                entry["pearson"], entry["pearson_p"] = _finite(pearson.statistic), _finite(pearson.pvalue)
                for method in ("spearman", "pearson"):
                    low, high = _bootstrap(xs, ys, method, bootstrap, seed, significance)
                    entry[f"{method}_ci_low"], entry[f"{method}_ci_high"] = low, high
                control = CONTROL.get(prop)
                triples = [
                    (row[prop], row[score], row[control])
                    for row in rows
                    if all(_number(row.get(key)) is not None for key in (prop, score, control))
                ]
                if triples:
                    entry["partial"], entry["partial_p"] = _partial(*zip(*triples))
                    entry["partial_n"] = len(triples)
            results.append(entry)
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


def _summary(spec: StudySpec, rows, table, significance: float) -> list[str]:
    from ..tasks.registry import get_task

    done = [row for row in rows if row["status"] == "ok"]
    lines = [f"- {len(done)} of {len(rows)} runs are complete; {sum(r['status'] == 'failed' for r in rows)} failed."]
    ranked = [row for row in done if _number(row.get("perplexity")) is not None]
    if ranked:
        lines.append(_best_line("Lowest held-out perplexity", ranked, "perplexity", lowest=True))
    for task in spec.tasks:
        column = f"{task.name}_{get_task(task.name).main_metric}"
        scored = [row for row in done if _number(row.get(column)) is not None]
        if scored:
            lines.append(_best_line(f"Best on {task.name} ({column})", scored, column))
    if spec.probes is not None:
        scored = [row for row in done if _number(row.get("probe_original")) is not None]
        if scored:
            lines.append(_best_line("Best SNLI accuracy in the probes", scored, "probe_original"))
    significant = [
        entry
        for entry in table
        if any(
            entry.get(f"{method}_p") is not None and entry[f"{method}_p"] < significance
            for method in ("spearman", "pearson")
        )
    ]
    measured = [entry for entry in table if entry["spearman"] is not None]
    if not measured:
        lines.append(f"- No correlation could be computed (it needs at least {MIN_RUNS} runs with varying values).")
    elif not significant:
        lines.append(f"- None of the {len(measured)} correlations is significant at the {significance} level.")
    for entry in significant:
        lines.append(
            f"- {entry['property']} vs {entry['score']}: Spearman {_format(entry['spearman'], 3)} "
            f"(p = {_format(entry['spearman_p'], 3)}), Pearson {_format(entry['pearson'], 3)} "
            f"(p = {_format(entry['pearson_p'], 3)}), n = {entry['n']}: significant at the {significance} level."
        )
    return lines


def _best_line(label: str, rows, column: str, lowest: bool = False) -> str:
    """The best run on `column`, or, when every run scores the same, that they tie: a constant score (a classifier
    that learned to answer one class, say) names no best run and can correlate with nothing."""
    values = {row[column] for row in rows}
    if len(values) == 1:
        return f"- {label}: every run scores {rows[0][column]:.4g} (a constant: it ranks no run and correlates with nothing)."
    best = (min if lowest else max)(rows, key=lambda row: row[column])
    return f"- {label}: {best['run']} ({best[column]:.4g})."


_TABLE_COLUMNS = ("run", "variant", "status", "parameters", "tokens_per_second", "eval_loss", "perplexity", *PROPERTIES)


def _markdown_table(headers: list[str], lines: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        + ["| " + " | ".join(line) + " |" for line in lines]
    )


def write_report(spec: StudySpec, output: str | Path, log=print) -> dict[str, Path]:
    """Write the result tables, correlations, plots and study_report.md from whatever results `output` holds."""
    output = Path(output)
    rows = collect_rows(spec, output)
    scores = score_columns(spec, rows)
    report = spec.report
    table = correlations(
        rows, PROPERTIES, scores, significance=report.significance, bootstrap=report.bootstrap, seed=report.seed
    )
    written = {
        "csv": _write(output / RESULTS_CSV, _csv_text(rows)),
        "json": _write(
            output / RESULTS_JSON,
            json.dumps({"study": spec.name, "runs": rows, "correlations": table}, indent=2, default=str) + "\n",
        ),
        "correlations": _write(output / CORRELATIONS_CSV, _csv_text(table)),
    }
    plot_paths = _plots(spec, output, rows, list(PROPERTIES), scores)
    columns = list(_TABLE_COLUMNS) + [c for c in scores if c not in _TABLE_COLUMNS and any(c in row for row in rows)]
    run_table = _markdown_table(columns, [[_format(row.get(column)) for column in columns] for row in rows])
    level = 1 - report.significance
    correlation_table = _markdown_table(
        [
            "property",
            "score",
            "n",
            "Spearman (p)",
            f"{level:.0%} CI",
            "Pearson (p)",
            f"{level:.0%} CI",
            "partial (p)",
            "controls for",
        ],
        [
            [
                entry["property"],
                entry["score"],
                str(entry["n"]),
                f"{_format(entry['spearman'], 3)} ({_format(entry['spearman_p'], 3)})",
                f"[{_format(entry['spearman_ci_low'], 3)}, {_format(entry['spearman_ci_high'], 3)}]",
                f"{_format(entry['pearson'], 3)} ({_format(entry['pearson_p'], 3)})",
                f"[{_format(entry['pearson_ci_low'], 3)}, {_format(entry['pearson_ci_high'], 3)}]",
                f"{_format(entry['partial'], 3)} ({_format(entry['partial_p'], 3)})",
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
            "## Summary\n\n" + "\n".join(_summary(spec, rows, table, report.significance)),
            "## Runs (mean over seeds; standard deviations in study_results.csv)\n\n" + run_table,
            "## Correlations across runs\n\nBootstrap intervals resample runs "
            f"({report.bootstrap} resamples); the partial correlation controls for the other property.\n\n"
            + correlation_table,
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

"""The study's report: the result tables, the correlations, the random-initialisation baselines, the differences
between runs against seed noise, plots, and a Markdown report (`write_report`).

The work is split by job: `rows` reads and checks the result files into one row per run (over the seeds every run
shares), `correlate` holds the statistics (chance exclusions, correlations with exact p-values and Holm's
correction, seed noise, the pairs that vary enough to plot), `baselines` the random-initialisation baselines, and
`summary` the plain-language lines. This module writes ``study_results.csv``/``.json``, ``study_correlations.csv``,
``plots/*.png`` and ``study_report.md``; it re-exports the names its callers have always imported from it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..readings import EXACT_UP_TO, MONTE_CARLO_ORDERINGS
from ..storage import atomic_output
from .baselines import PREFIX, baseline_values, compare_with_baselines
from .correlate import (
    CONTROL,
    MIN_RUNS,
    at_chance,
    chance_exclusions,
    correlations,
    noise_table,
    score_columns,
    varying_pairs,
)
from .layout import PLOTS_FOLDER, TRAINING_LOG, read_json, unit_folder
from .rows import (
    PROBE_VERDICT,
    PROPERTIES,
    VERDICT_SUFFIX,
    collect_rows,
    collect_units,
    combined_verdict,
    finished_seeds,
    number,
    shared_seeds,
    verdict_column,
)
from .spec import StudySpec
from .summary import best_line, chance_lines, format_value, summary_lines

__all__ = [
    "CONTROL",
    "CORRELATIONS_CSV",
    "MIN_RUNS",
    "PROBE_VERDICT",
    "PROPERTIES",
    "REPORT_FILE",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "VERDICT_SUFFIX",
    "chance_exclusions",
    "collect_rows",
    "collect_units",
    "correlations",
    "finished_seeds",
    "noise_table",
    "score_columns",
    "shared_seeds",
    "verdict_column",
    "write_report",
]

RESULTS_CSV = "study_results.csv"
RESULTS_JSON = "study_results.json"
CORRELATIONS_CSV = "study_correlations.csv"
REPORT_FILE = "study_report.md"
SCATTER_FILE = "scatter.png"

# The names the tests and older callers import from here.
_best_line, _chance_lines, _combined_verdict, _format = best_line, chance_lines, combined_verdict, format_value


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


def _plots(spec: StudySpec, output: Path, rows, noise, properties, scores, excluded_scores) -> list[Path]:
    """The scatter of the pairs that vary beyond noise, grid heat maps, loss curves, extrapolation curves and quality
    against compute; none when matplotlib is missing."""
    try:
        from . import plots
    except ImportError:
        return []
    folder = output / PLOTS_FOLDER
    written = []
    try:
        pairs, _ = varying_pairs(rows, noise, properties, scores, excluded_scores)
        scatter = plots.scatter_grid(rows, pairs, folder / SCATTER_FILE, noise) if pairs else None
        if scatter is None:
            (folder / SCATTER_FILE).unlink(missing_ok=True)  # an earlier report's figure would show stale pairs
        written.append(scatter)
        written += plots.grid_heatmaps(spec, rows, scores, folder)
        curves = {
            f"{run.name}-seed{seed}": read_json(unit_folder(output, run.name, seed) / "pretrain" / TRAINING_LOG)
            for run in spec.runs
            for seed in run.seeds
        }
        written.append(plots.loss_curves({name: log for name, log in curves.items() if log}, folder / "loss.png"))
        if spec.extrapolation is not None:
            written.append(plots.extrapolation_curves(rows, spec.extrapolation.lengths, folder / "extrapolation.png"))
        written.append(plots.quality_against_compute(rows, scores, folder / "compute.png"))
    except ImportError:  # matplotlib is an optional extra
        return [path for path in written if path is not None]
    return [path for path in written if path is not None]


_TABLE_COLUMNS = ("run", "variant", "status", "parameters", "tokens_per_second", "eval_loss", "perplexity", *PROPERTIES)
AT_CHANCE_MARK = " (not above chance)"


def _with_std(row, column: str) -> str:
    std = row.get(f"{column}_std")
    text = _format(row.get(column)) + (f" ± {_format(std, 2)}" if isinstance(std, float) else "")
    return text + (AT_CHANCE_MARK if number(row.get(column)) is not None and at_chance(row, column) else "")


def _markdown_table(headers: list[str], lines: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        + ["| " + " | ".join(line) + " |" for line in lines]
    )


def _noise_part(rows, noise) -> str:
    """The seed-noise table, each score's runs that are not above chance marked beside its verdict."""
    lines = []
    for entry in noise:
        if entry["runs"] <= 1:
            continue
        valued = [row for row in rows if number(row.get(entry["score"])) is not None]
        weak = [row["run"] for row in valued if at_chance(row, entry["score"])]
        marked = "every run" if weak and len(weak) == len(valued) else (", ".join(weak) or "–")
        lines.append(
            [
                entry["score"],
                str(entry["runs"]),
                _format(entry["between_std"], 3),
                _format(entry["within_std"], 3),
                _format(entry["p"], 3),
                entry["verdict"],
                marked,
            ]
        )
    if not lines:
        return ""
    return (
        "## Differences between runs against seed noise\n\nOne-way ANOVA of the per-seed values grouped by run: "
        "'within seed noise' means the runs' differences on that score cannot be told apart from what changing the "
        "seed does, so neither their ranking nor a correlation with it is reliable. The last column names the runs "
        "whose score is not above chance: their values are in the ANOVA but are not results.\n\n"
        + _markdown_table(
            [
                "score",
                "runs",
                "std between runs",
                "std within runs (seeds)",
                "ANOVA p",
                "verdict",
                "not above chance",
            ],
            lines,
        )
    )


def _baseline_part(baselines: dict, pretraining_help: dict) -> str:
    if not pretraining_help:
        return ""
    lines = []
    for column, entry in pretraining_help.items():
        for variant, by_column in baselines.items():
            values = by_column.get(column, {})
            score = _format(values.get("mean"))
            if values.get("std") is not None:
                score += f" ± {_format(values['std'], 2)}"
            verdict = {True: "pretraining helps", False: "pretraining does not help", None: "unknown"}[entry["helps"]]
            lines.append(
                [
                    column,
                    PREFIX + variant,
                    score,
                    str(len(values.get("values") or [])),
                    _format(values.get("n")),
                    f"{len(entry['above'])} of {len(entry['above']) + len(entry['not_above'])}",
                    verdict,
                    "; ".join(values.get("errors") or []) or "–",
                ]
            )
    return (
        "## Random-initialisation baselines\n\nA model of each variant at the study's size, never pretrained, "
        "fine-tuned on each task exactly as the runs are. A run's score beats it when the difference exceeds twice "
        "its noise (the seeds' standard deviations where both are known, else the binomial standard error of two "
        "accuracies on the same examples). A task that no run beats tells nothing about pretraining and is left "
        "out of the correlations.\n\n"
        + _markdown_table(
            ["score", "baseline", "baseline score", "values", "examples", "runs above it", "task", "errors"], lines
        )
    )


def _correlation_part(table, report) -> str:
    level = 1 - report.significance
    untested = sorted({f"{entry['score']} ({entry['excluded_reason']})" for entry in table if entry["excluded_reason"]})
    tested = sum(entry["spearman_p"] is not None for entry in table)
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
    return (
        "## Correlations across runs\n\np-values are permutation p-values (exact, every ordering of the runs, "
        f"up to {EXACT_UP_TO} runs; a seeded sample of {MONTE_CARLO_ORDERINGS:,} orderings above), then Holm-adjusted "
        f"over the {tested} pairs of the table that could be tested. Bootstrap intervals resample runs "
        f"({report.bootstrap} resamples); the partial correlation controls for the other property."
        + (f" Not tested: {'; '.join(untested)}." if untested else "")
        + "\n\n"
        + correlation_table
    )


def _scatter_part(output: Path, plot_paths, pairs, left_out) -> str:
    """The scatter's caption: which pairs it shows, and every pair left out with its reason."""
    scatter = next((path for path in plot_paths if path.name == SCATTER_FILE), None)
    lines = []
    if scatter is not None:
        lines.append(
            f"![scatter]({scatter.relative_to(output)})\n\nOne panel per (property, score) pair that varies beyond "
            f"noise ({len(pairs)}): {', '.join(f'{x} vs {y}' for x, y in pairs)}. Error bars are the standard "
            "deviation over seeds where there are several; hollow markers are values not above chance (left out of "
            "the correlations); an axis marked 'range widened' spans +-2 seed noise because the runs' spread is "
            "smaller."
        )
    elif pairs:
        lines.append(f"No scatter (matplotlib is not installed); {len(pairs)} pair(s) vary beyond noise.")
    else:
        lines.append("No scatter: no (property, score) pair varies beyond noise.")
    by_reason: dict[str, list[str]] = {}
    for item in left_out:
        by_reason.setdefault(item["reason"], []).append(f"{item['property']} vs {item['score']}")
    if by_reason:
        lines.append(
            f"Left out of the scatter ({len(left_out)} pairs):\n\n"
            + "\n".join(f"- {', '.join(names)}: {reason}." for reason, names in by_reason.items())
        )
    return "\n\n".join(lines)


def write_report(spec: StudySpec, output: str | Path, log=print) -> dict[str, Path]:
    """Write the result tables, correlations, plots and study_report.md from whatever results `output` holds."""
    output = Path(output)
    units = collect_units(spec, output)
    rows = collect_rows(spec, output, units)
    scores = score_columns(spec, rows)
    report = spec.report
    baselines = baseline_values(spec, output)
    task_columns = [score for score in scores if score != "perplexity" and not score.startswith("probe_")]
    pretraining_help = compare_with_baselines(rows, baselines, task_columns) if spec.random_init is not None else {}
    excluded_scores = {column: entry["reason"] for column, entry in pretraining_help.items() if entry["reason"]}
    table = correlations(
        rows,
        PROPERTIES,
        scores,
        significance=report.significance,
        bootstrap=report.bootstrap,
        seed=report.seed,
        excluded_scores=excluded_scores,
    )
    noise = noise_table(units, [*scores, *PROPERTIES], report.significance)
    pairs, left_out = varying_pairs(rows, noise, list(PROPERTIES), scores, excluded_scores)
    written = {
        "csv": _write(output / RESULTS_CSV, _csv_text(rows)),
        "json": _write(
            output / RESULTS_JSON,
            json.dumps(
                {
                    "study": spec.name,
                    "runs": rows,
                    "correlations": table,
                    "seed_noise": noise,
                    "random_init": {"baselines": baselines, "pretraining_helps": pretraining_help},
                    "scatter": {"pairs": [list(pair) for pair in pairs], "left_out": left_out},
                },
                indent=2,
                default=str,
            )
            + "\n",
        ),
        "correlations": _write(output / CORRELATIONS_CSV, _csv_text(table)),
    }
    plot_paths = _plots(spec, output, rows, noise, list(PROPERTIES), scores, excluded_scores)
    columns = list(_TABLE_COLUMNS) + [c for c in scores if c not in _TABLE_COLUMNS and any(c in row for row in rows)]
    run_table = _markdown_table(columns, [[_with_std(row, column) for column in columns] for row in rows])
    failures = [f"- {row['run']}: {row['errors']}" for row in rows if row["errors"]]
    other_plots = [path for path in plot_paths if path.name != SCATTER_FILE]
    text = "\n\n".join(
        part
        for part in (
            f"# Study: {spec.name}",
            f"Pretraining: {spec.pretraining.size} models, {spec.pretraining.max_steps} steps of "
            f"{spec.pretraining.tokens_per_step} tokens each per run, sequence length {spec.pretraining.max_seq_length}.",
            "## Summary\n\n"
            + "\n".join(summary_lines(spec, rows, table, noise, units, report.significance, pretraining_help)),
            "## Runs (mean ± standard deviation over the compared seeds)\n\n"
            f"A value marked{AT_CHANCE_MARK} does not beat chance by twice its noise: it is shown, never ranked or "
            "correlated.\n\n" + run_table,
            _baseline_part(baselines, pretraining_help),
            _noise_part(rows, noise),
            _correlation_part(table, report),
            ("## Failures\n\n" + "\n".join(failures)) if failures else "",
            "## Plots\n\n"
            + _scatter_part(output, plot_paths, pairs, left_out)
            + "".join(f"\n\n![{path.stem}]({path.relative_to(output)})" for path in other_plots),
        )
        if part
    )
    written["report"] = _write(output / REPORT_FILE, text + "\n")
    log(f"wrote {', '.join(str(path) for path in written.values())}")
    return written

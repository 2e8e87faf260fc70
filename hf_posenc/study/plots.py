"""The study's figures (matplotlib, the optional ``plots`` extra): property-vs-score scatters with the runs labelled
(only the pairs that vary beyond noise, with error bars and honest axes),
heat maps of scores over a two-parameter grid, the loss curves of every run, extrapolation curves, and quality against
training compute."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..analysis.plots import _new_figure, _save
from .spec import GRID_ALIASES, StudySpec

__all__ = [
    "extrapolation_curves",
    "grid_heatmaps",
    "loss_curves",
    "quality_against_compute",
    "scatter_figure",
    "scatter_grid",
]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


# Readable at the size the report shows a panel: axis labels, tick labels and the run names beside the points.
LABEL_SIZE, TICK_SIZE, NAME_SIZE = 11, 10, 8
PANEL_WIDTH, PANEL_HEIGHT, MAX_COLUMNS = 4.8, 4.0, 3
WIDENED = "range widened to ±2 seed noise"


def _axis_limits(values: list[float], reading: dict) -> tuple[tuple[float, float], str]:
    """The axis range of `values` and a note for its label. An axis must not stretch a spread smaller than the seed
    noise across the whole panel: it then spans at least +-2 noise around the runs' centre and says so."""
    low, high = min(values), max(values)
    centre, half = (low + high) / 2, (high - low) / 2
    half = half or abs(centre) * 0.05 or 1.0  # one value only (other runs at chance): a visible range around it
    noise = reading.get("within_std")
    if noise is None:
        return (low - 0.1 * half, high + 0.1 * half), "seed noise unknown"
    if 2 * noise > half:
        return (centre - 2 * noise, centre + 2 * noise), WIDENED
    return (low - 0.1 * half, high + 0.1 * half), ""


def _draw_run(axis, row: dict, x: float, y: float, x_std: float | None, score: str, hollow: bool) -> None:
    """One run as a point named by its run, with the seeds' standard deviations as error bars; hollow when its score
    is not above chance."""
    axis.errorbar(
        [x],
        [y],
        xerr=x_std,
        yerr=_number(row.get(f"{score}_std")),
        fmt="o",
        markersize=6,
        color="tab:blue",
        markerfacecolor="none" if hollow else "tab:blue",
        elinewidth=1,
        capsize=2,
    )
    axis.annotate(row["run"], (x, y), fontsize=NAME_SIZE, xytext=(3, 3), textcoords="offset points")


def scatter_figure(rows: list[dict], pairs: list[tuple[str, str]], noise: list[dict] | None = None):
    """One panel per (property, score) pair of `pairs`: each run a labelled point with error bars (the standard
    deviation over seeds, where there are several); values not above chance are hollow."""
    from .correlate import at_chance

    readings = {entry["score"]: entry for entry in noise or []}
    columns = min(MAX_COLUMNS, len(pairs))
    lines = math.ceil(len(pairs) / columns)
    figure = _new_figure(PANEL_WIDTH * columns, PANEL_HEIGHT * lines)
    for index, (prop, score) in enumerate(pairs):
        axis = figure.add_subplot(lines, columns, index + 1)
        xs, ys = [], []
        for row in rows:
            x, y = _number(row.get(prop)), _number(row.get(score))
            if x is None or y is None:
                continue
            xs.append(x)
            ys.append(y)
            _draw_run(axis, row, x, y, _number(row.get(f"{prop}_std")), score, at_chance(row, score))
        x_range, x_note = _axis_limits(xs, readings.get(prop, {}))
        y_range, y_note = _axis_limits(ys, readings.get(score, {}))
        axis.set_xlim(*x_range)
        axis.set_ylim(*y_range)
        axis.set_xlabel(prop + (f"\n({x_note})" if x_note else ""), fontsize=LABEL_SIZE)
        axis.set_ylabel(score + (f"\n({y_note})" if y_note else ""), fontsize=LABEL_SIZE)
        axis.tick_params(labelsize=TICK_SIZE)
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


def scatter_grid(rows: list[dict], pairs: list[tuple[str, str]], path: Path, noise: list[dict] | None = None) -> Path:
    """`scatter_figure` of the pairs (those that vary beyond noise: `correlate.varying_pairs`), saved to `path`."""
    return _save(scatter_figure(rows, pairs, noise), path)


def grid_heatmaps(spec: StudySpec, rows: list[dict], scores: list[str], folder: Path) -> list[Path]:
    """For every spec entry with a grid over exactly two parameters (the attenuated w x s), a heat map of each
    score over the grid, one file per (grid, score)."""
    written = []
    by_group: dict[str, list] = {}
    for run in spec.runs:
        if len(run.grid) == 2:
            by_group.setdefault(run.group, []).append(run)
    values = {row["run"]: row for row in rows}
    for group, runs in by_group.items():
        first, second = list(runs[0].grid)
        xs = sorted({run.grid[first] for run in runs}, key=str)
        ys = sorted({run.grid[second] for run in runs}, key=str)
        for score in scores:
            cells = [[math.nan] * len(xs) for _ in ys]
            for run in runs:
                value = _number(values.get(run.name, {}).get(score))
                if value is not None:
                    cells[ys.index(run.grid[second])][xs.index(run.grid[first])] = value
            if all(math.isnan(cell) for line in cells for cell in line):
                continue
            figure = _new_figure(1.2 + 0.9 * len(xs), 1.0 + 0.7 * len(ys))
            axis = figure.add_subplot()
            image = axis.imshow(cells, cmap="viridis", origin="lower", aspect="auto")
            axis.set_xticks(range(len(xs)), [str(x) for x in xs])
            axis.set_yticks(range(len(ys)), [str(y) for y in ys])
            axis.set_xlabel(f"{GRID_ALIASES.get(first, first)} ({first})")
            axis.set_ylabel(f"{GRID_ALIASES.get(second, second)} ({second})")
            axis.set_title(f"{group}: {score}", fontsize=9)
            for y_index, line in enumerate(cells):
                for x_index, cell in enumerate(line):
                    if not math.isnan(cell):
                        axis.text(x_index, y_index, f"{cell:.3g}", ha="center", va="center", fontsize=7, color="w")
            figure.colorbar(image, ax=axis)
            written.append(_save(figure, folder / f"heatmap_{group}_{score}.png"))
    return written


def loss_curves(logs: dict[str, dict], path: Path) -> Path | None:
    """Training loss against step, one line per (run, seed), on one figure."""
    if not logs:
        return None
    figure = _new_figure(7.0, 4.5)
    axis = figure.add_subplot()
    for name, log in sorted(logs.items()):
        points = [(entry["step"], entry["loss"]) for entry in log.get("log_history", []) if "loss" in entry]
        if points:
            axis.plot(*zip(*points), label=name, linewidth=1)
    axis.set_xlabel("step")
    axis.set_ylabel("training loss (masked LM)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=6, ncol=2)
    return _save(figure, path)


def extrapolation_curves(rows: list[dict], lengths: list[int], path: Path) -> Path:
    """Held-out masked-LM loss against sequence length, one line per run (mean over seeds)."""
    figure = _new_figure(6.5, 4.2)
    axis = figure.add_subplot()
    for row in rows:
        points = [
            (length, value)
            for length in sorted(lengths)
            if (value := _number(row.get(f"extrapolation_loss_{length}"))) is not None
        ]
        if points:
            axis.plot(*zip(*points), marker="o", label=row["run"], linewidth=1)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("sequence length (tokens)")
    axis.set_ylabel("masked-LM loss")
    axis.grid(True, alpha=0.3)
    if axis.lines:
        axis.legend(fontsize=6, ncol=2)
    return _save(figure, path)


def quality_against_compute(rows: list[dict], scores: list[str], path: Path) -> Path | None:
    """Held-out perplexity and each score against the run's training compute (model FLOPs: steps x tokens per step x
    FLOPs per token), one panel each, a labelled point per run with the seeds' standard deviation as error bars and
    hollow points where a score is not above chance. None when no run recorded its compute."""
    from .correlate import at_chance

    measured = [row for row in rows if _number(row.get("model_flops"))]
    panels = [
        column
        for column in dict.fromkeys(("perplexity", *scores))
        if any(_number(row.get(column)) is not None for row in measured)
    ]
    if not measured or not panels:
        return None
    columns = min(MAX_COLUMNS, len(panels))
    lines = math.ceil(len(panels) / columns)
    figure = _new_figure(PANEL_WIDTH * columns, PANEL_HEIGHT * lines)
    for index, column in enumerate(panels):
        axis = figure.add_subplot(lines, columns, index + 1)
        for row in measured:
            y = _number(row.get(column))
            if y is None:
                continue
            hollow = column != "perplexity" and at_chance(row, column)
            _draw_run(axis, row, row["model_flops"], y, None, column, hollow)
        axis.set_xscale("log")
        axis.set_xlabel("training compute (model FLOPs)", fontsize=LABEL_SIZE)
        axis.set_ylabel(column + (" (hollow: not above chance)" if column != "perplexity" else ""), fontsize=LABEL_SIZE)
        axis.tick_params(labelsize=TICK_SIZE)
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)

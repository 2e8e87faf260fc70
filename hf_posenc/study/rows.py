"""The study's rows: what each (run, seed) unit's result files hold, checked against each value's definition, and one
row per run over the seeds that every run has finished.

- `collect_units(spec, output)`: run name -> seed -> (its numbers, its problems);
- `shared_seeds(units)`: the seeds every run with a finished pretraining has finished (the only ones compared);
- `collect_rows(spec, output)`: per run, the mean (and ``<column>_std``, the sample standard deviation over seeds) of
  every measurement over the shared seeds, its settings and its status.

A value outside the range its definition allows (a locality of 5.0, a perplexity below 1, an accuracy of 81 where
fractions are stored) is refused: it is left out of the row, and the run's ``errors`` name the file and the field,
so it reaches neither ``study_results.csv`` nor a correlation. A result file that cannot be read is refused alike.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from ..readings import ABOVE_CHANCE, NOT_ABOVE_CHANCE
from ..results import FinetuneResult, PretrainResult, ProbeResult
from .layout import ERROR_FILE, POSITION_FILE, TRAINING_LOG, read_json, step_folders, unit_folder
from .spec import StudySpec

__all__ = [
    "PROPERTIES",
    "PROBE_VERDICT",
    "VERDICT_SUFFIX",
    "collect_rows",
    "collect_units",
    "combined_verdict",
    "finished_seeds",
    "number",
    "shared_seeds",
    "value_range",
    "verdict_column",
]

# The attention properties the study correlates with scores (measured on held-out text after pretraining).
PROPERTIES = ("locality", "symmetry", "symmetry_scale_aware")
# A row's `<score>_verdict` column: whether the score beat chance ("above chance", "not above chance", "unknown").
# Every probe score (probe_original, probe_delta_*) shares the probe model's verdict, `probe_verdict`.
VERDICT_SUFFIX = "_verdict"
PROBE_VERDICT = "probe" + VERDICT_SUFFIX

# The ranges the definitions allow (docs/metrics.md for locality and the symmetries; fractions for accuracies, as the
# result files store them; correlation-like metrics in [-1, 1]; probe deltas in accuracy points).
_FRACTION = (0.0, 1.0)
_CORRELATION = (-1.0, 1.0)
_NON_NEGATIVE = (0.0, math.inf)
_METRIC_RANGES = {
    "accuracy": _FRACTION,
    "f1": _FRACTION,
    "matthews_correlation": _CORRELATION,
    "pearson": _CORRELATION,
    "spearmanr": _CORRELATION,
}


def value_range(column: str) -> tuple[float, float] | None:
    """The closed range a row column's value must lie in by its definition; None for a column without one."""
    if column.startswith("position_"):
        column = column.removeprefix("position_")
    if column in PROPERTIES or column == "probe_chance":
        return _FRACTION
    if column == "perplexity":
        return (1.0, math.inf)  # exp of a non-negative loss
    if column in ("eval_loss", "train_loss", "train_steps", "parameters", "tokens_per_second", "mfu", "model_flops"):
        return _NON_NEGATIVE
    if column.startswith("extrapolation_loss_"):
        return _NON_NEGATIVE
    if column.startswith("probe_delta_"):
        return (-100.0, 100.0)  # accuracy points against the original test set
    if column.startswith("probe_"):
        return _FRACTION  # accuracies and the still-entailment rate, as fractions
    for metric, allowed in _METRIC_RANGES.items():  # a task's metric: "<task>_<metric>"
        if column.endswith("_" + metric):
            return allowed
    return None


def verdict_column(score: str) -> str:
    """The row column that holds `score`'s chance verdict."""
    return PROBE_VERDICT if score.startswith("probe_") else f"{score}{VERDICT_SUFFIX}"


def combined_verdict(verdicts: list[Any]) -> str | None:
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


def number(value: Any) -> float | None:
    """A value as a float; None for a missing, undefined (NaN) or non-numeric one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


class _UnitReader:
    """Collects one unit's values, refusing each that is not a number in its column's range."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.problems: list[str] = []

    def take(self, column: str, value: Any, source: Path, field: str) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            self.values[column] = None  # undefined: a result, not a mistake
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problems.append(f"{source}: {field} = {value!r} is not a number; {_FIX}")
            return
        allowed = value_range(column)
        if allowed is not None and not allowed[0] <= value <= allowed[1]:
            low, high = (f"{bound:g}" for bound in allowed)
            self.problems.append(
                f"{source}: {field} = {value!r} is outside [{low}, {high}], the range of its definition; {_FIX}"
            )
            return
        self.values[column] = value

    def load(self, result_type, folder: Path):
        """The result file in `folder` (None when there is none); an unreadable one is a problem, not a crash."""
        if not result_type.exists_in(folder):
            return None
        try:
            return result_type.load(folder)
        except ValueError as error:
            self.problems.append(f"{error} The report leaves it out.")
            return None


_FIX = "the file was changed or damaged: the value is refused (left out of the study's rows); delete the step's folder and rerun the study to measure it again."  # fmt: skip


def _unit_values(spec: StudySpec, unit: Path) -> tuple[dict[str, Any], list[str]]:
    """The numbers one (run, seed) produced (and, as ``<score>_verdict``, whether its scores beat chance), and its
    problems: failed steps as 'step: error', refused values naming their file and field."""
    from ..tasks.registry import get_task

    reader = _UnitReader()
    errors = []
    steps = step_folders(unit, [task.name for task in spec.tasks])
    for step, folder in steps.items():
        error = read_json(folder / ERROR_FILE)
        if error is not None:
            errors.append(f"{step}: {error.get('error')}")
    pretrain = steps["pretrain"]
    result = reader.load(PretrainResult, pretrain)
    if result is not None:
        source = PretrainResult.path_in(pretrain)
        for key in ("train_steps", "train_loss", "eval_loss", "perplexity", *PROPERTIES):
            reader.take(key, getattr(result, key), source, key)
    log = _read_log(pretrain / TRAINING_LOG, reader)
    for key in ("parameters", "tokens_per_second", "mfu", "model_flops"):
        if key in log:
            reader.take(key, log[key], pretrain / TRAINING_LOG, key)
    for task in spec.tasks:
        folder = steps[f"task:{task.name}"]
        result = reader.load(FinetuneResult, folder)
        if result is None or not isinstance(result.tasks.get(task.name), dict):
            continue
        source = FinetuneResult.path_in(folder)
        for metric, numbers in (result.tasks[task.name].get("report") or {}).items():
            mean = numbers.get("mean") if isinstance(numbers, dict) else numbers
            field = f"tasks[{task.name!r}]['report'][{metric!r}]['mean']"
            reader.take(f"{task.name}_{metric}", mean, source, field)
        # the verdict is the main metric's, the score the study correlates
        main_metric = f"{task.name}_{get_task(task.name).main_metric}"
        reader.values[f"{main_metric}{VERDICT_SUFFIX}"] = result.task_verdict(task.name)
    probe = reader.load(ProbeResult, steps["probes"]) if spec.probes is not None else None
    if probe is not None:
        source = ProbeResult.path_in(steps["probes"])
        for name, accuracy in probe.probes.items():
            reader.take(f"probe_{name}", accuracy, source, f"probes[{name!r}]")
        for name, delta in probe.deltas.items():
            reader.take(f"probe_delta_{name}", delta, source, f"deltas[{name!r}]")
        reader.take("probe_chance", probe.chance, source, "chance")
        reader.values[PROBE_VERDICT] = probe.verdict
    if spec.extrapolation is not None:
        from ..analysis.extrapolation import ExtrapolationResult

        result = reader.load(ExtrapolationResult, steps["extrapolation"])
        for item in result.measurements if result is not None else []:
            source = ExtrapolationResult.path_in(steps["extrapolation"])
            reader.take(f"extrapolation_loss_{item.length}", item.loss, source, f"loss at length {item.length}")
    if spec.position_attention is not None:
        path = steps["position_attention"] / POSITION_FILE
        position = _read_log(path, reader)
        if position.get("applicable"):
            for key in PROPERTIES:
                reader.take(f"position_{key}", position.get(key), path, key)
    return reader.values, errors + reader.problems


def _read_log(path: Path, reader: _UnitReader) -> dict:
    try:
        values = read_json(path)
    except (ValueError, UnicodeDecodeError) as error:
        reader.problems.append(f"{path} is not valid JSON ({error}); the report leaves it out.")
        return {}
    if values is not None and not isinstance(values, dict):
        reader.problems.append(f"{path} must hold a JSON object; the report leaves it out.")
        return {}
    return values or {}


def collect_units(
    spec: StudySpec, output: str | Path
) -> dict[str, dict[int, tuple[dict[str, float | None], list[str]]]]:
    """run name -> seed -> (its numbers, its problems), for every (run, seed) of the spec."""
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
                row[column] = combined_verdict([values.get(column) for values in per_seed])
                continue
            numbers = [value for values in per_seed if (value := number(values.get(column))) is not None]
            row[column] = statistics.fmean(numbers) if numbers else None
            row[f"{column}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else None
        rows.append(row)
    return rows

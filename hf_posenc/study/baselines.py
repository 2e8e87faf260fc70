"""The random-initialisation baseline of a study: for each variant, a model of the study's size that was never
pretrained, fine-tuned on every task exactly as the pretrained runs are. A task on which no pretrained run beats
its baseline by more than the noise does not measure what pretraining gave the model (a small encoder fine-tuned
from scratch can learn sentiment by itself), so it cannot test a claim about the pretrained attention: the report
leaves it out of the correlations and says why.

Spec: ``evaluations.random_init`` (`RandomInitSpec`), on by default whenever the spec has tasks; ``false`` turns it
off; ``{variants: [rope]}`` limits it to some variants (runs of the others are then compared with nothing).

Layout: ``<output>/baselines/random-init-<variant>/seed-<seed>/`` holds ``model/`` (the random weights, the shared
tokenizer and ``random_init.json``) and ``tasks/<task>/`` (a `FinetuneResult`), each step skipped once done and
recorded in ``error.json`` when it fails, like a run's unit. Its seeds are the seeds of the variant's runs (the seed
draws the initial weights). The model's config is the variant's defaults at the study's size with the spec's
``config_overrides``, the vocabulary of the shared tokenizer and the study's block length.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..readings import ABOVE_BASELINE, NOT_ABOVE_BASELINE, baseline_verdict
from ..results import FinetuneResult
from .layout import ERROR_FILE, read_json, write_json
from .rows import number

__all__ = [
    "BASELINES_FOLDER",
    "BaselineUnit",
    "RandomInitSpec",
    "baseline_plans",
    "baseline_units",
    "baseline_values",
    "compare_with_baselines",
    "create_random_model",
    "parse_random_init",
    "unit_steps",
]

BASELINES_FOLDER = "baselines"
MODEL_FOLDER = "model"
MARKER_FILE = "random_init.json"  # written last: the model folder is complete
PREFIX = "random-init-"
# A row's column holding its score's verdict against the random-initialisation baseline, and the baseline's mean.
VERSUS_SUFFIX = "_vs_random_init"
BASELINE_SUFFIX = "_random_init"


@dataclass
class RandomInitSpec:
    """A randomly initialised model per variant, fine-tuned on every task like the pretrained runs."""

    variants: list[str] | None = None  # None: every variant of the study's runs


@dataclass
class BaselineUnit:
    """One random-initialisation model (a variant and a seed) and its folder."""

    variant: str
    seed: int
    folder: Path

    @property
    def name(self) -> str:
        return PREFIX + self.variant

    @property
    def label(self) -> str:
        return f"{self.name} seed {self.seed}"


def parse_random_init(evaluations: dict, tasks: list, runs: list, where) -> RandomInitSpec | None:
    """The spec's ``evaluations.random_init``: on by default when there are tasks, ``false`` for none."""
    from .spec import _dataclass

    path = ("evaluations", "random_init")
    value = evaluations.get("random_init")
    if value is False:
        return None
    if not tasks:
        if "random_init" in evaluations:
            raise where.error(path, "random_init fine-tunes a random model on the spec's tasks, and it has none.")
        return None
    spec = _dataclass(RandomInitSpec, {} if value in (None, True) else value, path, where)
    if spec.variants is not None and (
        not isinstance(spec.variants, list) or not spec.variants or not all(isinstance(v, str) for v in spec.variants)
    ):
        raise where.error(
            path + ("variants",), f"variants must be a non-empty list of variant names; got {spec.variants!r}."
        )
    present = list(dict.fromkeys(run.variant for run in runs))
    for variant in spec.variants or []:
        if variant not in present:
            raise where.error(
                path + ("variants",),
                f"random_init variant {variant!r} has no run in this study; its variants are {', '.join(present)}.",
            )
    return spec


def baseline_units(spec, output: Path, runs: list | None = None) -> list[BaselineUnit]:
    """The baseline units of `runs` (all the spec's by default): one per (variant, seed of its runs)."""
    settings = getattr(spec, "random_init", None)
    if settings is None:
        return []
    runs = spec.runs if runs is None else runs
    wanted = settings.variants
    seeds: dict[str, list[int]] = {}
    for run in runs:
        if wanted is None or run.variant in wanted:
            seeds.setdefault(run.variant, [])
            seeds[run.variant] += [seed for seed in run.seeds if seed not in seeds[run.variant]]
    return [
        BaselineUnit(variant, seed, Path(output) / BASELINES_FOLDER / (PREFIX + variant) / f"seed-{seed}")
        for variant, variant_seeds in seeds.items()
        for seed in sorted(variant_seeds)
    ]


def unit_steps(spec, unit: BaselineUnit) -> dict[str, Path]:
    """Step name -> folder, in the order they run: the random model, then each task."""
    return {"init": unit.folder / MODEL_FOLDER, **{f"task:{task.name}": unit.folder / "tasks" / task.name for task in spec.tasks}}  # fmt: skip


def step_done(step: str, folder: Path) -> bool:
    if step == "init":
        return (folder / MARKER_FILE).is_file()
    return FinetuneResult.exists_in(folder) and FinetuneResult.load(folder).complete


def create_random_model(spec, variant: str, seed: int, tokenizer_folder: Path, folder: Path) -> None:
    """Save a randomly initialised masked-LM of `variant` at the study's size (seeded) with the shared tokenizer."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, set_seed

    import hf_posenc

    from ..training.arguments import SIZE_PRESETS
    from ..training.model_config import parse_config_overrides

    pretraining = spec.pretraining
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    config = hf_posenc.create_config(
        variant,
        **{
            **SIZE_PRESETS[pretraining.size],
            **parse_config_overrides(variant, pretraining.config_overrides),
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
        },
    )
    config.trained_max_length = pretraining.max_seq_length  # what the pretrained runs record
    set_seed(seed)
    model = AutoModelForMaskedLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_json(folder / MARKER_FILE, {"variant": variant, "seed": seed, "parameters": model.num_parameters()})


def run_step(spec, unit: BaselineUnit, step: str, tokenizer_folder: Path, folder: Path, log) -> None:
    from .runner import run_task

    if step == "init":
        create_random_model(spec, unit.variant, unit.seed, tokenizer_folder, folder)
    else:
        task = next(task for task in spec.tasks if task.name == step.removeprefix("task:"))
        run_task(task, unit.folder / MODEL_FOLDER, folder, f"{unit.name}-seed{unit.seed}", log)


def baseline_plans(spec, output: Path, runs: list, retry_failed: bool) -> list:
    """The dry run's `plan.UnitPlan` of each baseline unit of `runs`: its steps done, to run and failed before."""
    from .plan import UnitPlan

    plans = []
    for unit in baseline_units(spec, output, runs):
        plan = UnitPlan(unit.name, unit.variant, unit.seed)
        for step, folder in unit_steps(spec, unit).items():
            if step_done(step, folder):
                plan.steps_done.append(step)
            elif (folder / ERROR_FILE).is_file() and not retry_failed:
                plan.steps_failed.append(step)
            else:
                plan.steps_to_run.append(step)
        if "init" in plan.steps_failed:
            plan.steps_to_run = []
        plans.append(plan)
    return plans


# ------------------------------------------------------------------------------------------------ reading
def baseline_values(spec, output: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> score column -> {"mean", "std", "values", "n", "seeds", "errors"}: each task's main metric over
    every (initial seed, fine-tuning seed) of the variant's baseline, with the examples scored."""
    from ..tasks.registry import get_task

    found: dict[str, dict[str, dict[str, Any]]] = {}
    for unit in baseline_units(spec, output):
        for task in spec.tasks:
            column = f"{task.name}_{get_task(task.name).main_metric}"
            entry = found.setdefault(unit.variant, {}).setdefault(
                column, {"values": [], "n": None, "seeds": [], "errors": []}
            )
            folder = unit_steps(spec, unit)[f"task:{task.name}"]
            error = read_json(folder / ERROR_FILE) or read_json(unit.folder / MODEL_FOLDER / ERROR_FILE)
            if error is not None:
                entry["errors"].append(f"seed {unit.seed}: {error.get('error')}")
            if not FinetuneResult.exists_in(folder):
                continue
            try:
                summary = FinetuneResult.load(folder).tasks.get(task.name) or {}
            except ValueError as problem:
                entry["errors"].append(f"seed {unit.seed}: {problem}")
                continue
            report = (summary.get("report") or {}).get(get_task(task.name).main_metric) or {}
            values = [value for value in report.get("values") or [report.get("mean")] if number(value) is not None]
            if values:
                entry["values"] += values
                entry["seeds"].append(unit.seed)
                entry["n"] = (summary.get("examples") or {}).get(summary.get("report_split"))
    for by_column in found.values():
        for entry in by_column.values():
            values = entry["values"]
            entry["mean"] = statistics.fmean(values) if values else None
            entry["std"] = statistics.stdev(values) if len(values) > 1 else None
    return found


def compare_with_baselines(rows: list[dict[str, Any]], baselines: dict, columns: list[str]) -> dict[str, dict]:
    """Add ``<column>_random_init`` (the baseline's mean) and ``<column>_vs_random_init`` (`baseline_verdict`) to
    each row, and return, per column, whether pretraining helped the task: ``helps`` is False when every run with a
    verdict is not above its baseline (the task is then left out of the correlations, ``reason`` says why), True
    when at least one run is above it, None when nothing could be compared."""
    summary = {}
    for column in columns:
        verdicts: dict[str, list[str]] = {ABOVE_BASELINE: [], NOT_ABOVE_BASELINE: [], "unknown": []}
        for row in rows:
            score = number(row.get(column))
            baseline = baselines.get(row["variant"], {}).get(column)
            if score is None or baseline is None or baseline["mean"] is None:
                continue
            reading = baseline_verdict(
                score,
                baseline["mean"],
                score_std=row.get(f"{column}_std"),
                baseline_std=baseline["std"],
                n=baseline["n"],
            )
            row[f"{column}{BASELINE_SUFFIX}"] = baseline["mean"]
            row[f"{column}{VERSUS_SUFFIX}"] = reading["verdict"]
            verdicts[reading["verdict"]].append(row["run"])
        compared = verdicts[ABOVE_BASELINE] + verdicts[NOT_ABOVE_BASELINE]
        helps = None
        if verdicts[ABOVE_BASELINE]:
            helps = True
        elif compared and not verdicts["unknown"]:
            helps = False
        summary[column] = {
            "helps": helps,
            "above": verdicts[ABOVE_BASELINE],
            "not_above": verdicts[NOT_ABOVE_BASELINE],
            "unknown": verdicts["unknown"],
            "baseline": {variant: by_column[column]["mean"] for variant, by_column in baselines.items() if column in by_column},
            "reason": (
                f"pretraining does not help this task: none of the {len(compared)} runs beats the randomly "
                "initialised model of its variant, fine-tuned the same way, by more than twice the noise"
            )
            if helps is False
            else "",
        }  # fmt: skip
    return summary

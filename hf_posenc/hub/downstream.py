"""Downstream (fine-tuning) scores on a model card: `finetune_card_results(result)` turns the `FinetuneResult` of
`hf-posenc finetune` into the card's ``finetune`` key, and `task_dataset`/`task_type` say how each task appears in
the card's model-index.

The card's ``finetune`` key maps each task name to::

    {"split": "test",                        # the report split (required)
     "metrics": {"accuracy": 0.81, ...},     # mean over the seeds, one or more (required)
     "main_metric": "accuracy",              # the metric that chose the learning rate (optional)
     "std": {"accuracy": 0.01, ...},         # sample standard deviation over the seeds (optional)
     "seeds": 3,                             # how many seeds the means are over (optional)
     "learning_rate": 5e-5,                  # the learning rate chosen on the selection split (optional)
     "kind": "sentence-pair classification", # a hf_posenc.tasks.TaskKind value (optional)
     "examples": 1000,                       # how many report-split examples were scored (optional)
     "chance": {"accuracy": 0.59, ...},      # each metric's chance level on the same split (optional)
     "verdict": "above chance"}              # the main metric against its chance level (optional; "unknown")

The chance level is the metric of always answering the split's majority label (its mean label for regression), and
the verdict is `hf_posenc.readings.chance_verdict`'s: "above chance", "not above chance" or "unknown".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..readings import ABOVE_CHANCE, NOT_ABOVE_CHANCE
from ..results import FinetuneResult
from ..tasks.base import TaskKind

__all__ = ["FINETUNE_FIELDS", "FINETUNE_VERDICTS", "finetune_card_results", "task_dataset", "task_type"]

# What a task's verdict against chance may say.
FINETUNE_VERDICTS = (ABOVE_CHANCE, NOT_ABOVE_CHANCE, "unknown")

# The fields of one task under the card's "finetune" key, and what each holds (for error messages).
FINETUNE_FIELDS = {
    "split": "the report split's name",
    "metrics": "a dict of metric name -> mean",
    "main_metric": "the name of one of its metrics",
    "std": "a dict of metric name -> standard deviation",
    "seeds": "the number of seeds, at least 1",
    "learning_rate": "the learning rate chosen, a number above 0",
    "kind": f"one of {', '.join(repr(kind.value) for kind in TaskKind)}",
    "examples": "the number of report-split examples scored",
    "chance": "a dict of metric name -> chance level on the same split",
    "verdict": f"the main metric against chance, one of {', '.join(repr(verdict) for verdict in FINETUNE_VERDICTS)}",
}


def task_type(kind: str | None) -> str:
    """The Hub's task type of a task kind: token classification is tagging, every other kind (classification of a
    sentence or a pair, regression such as STS-B) is text classification."""
    return "token-classification" if kind == TaskKind.TOKEN_CLASSIFICATION.value else "text-classification"


def task_dataset(name: str, split: str) -> tuple[str, str | None, str]:
    """(Hub dataset id, configuration, split) of the task called `name` as the model-index names it: a GLUE task is
    the Hub dataset ``nyu-mll/glue`` with its configuration (MNLI's validation sets are its ``validation_matched``
    and ``validation_mismatched`` splits); any other task is named by itself, on its report `split`."""
    from ..tasks import TASKS

    task = TASKS.get(name)
    if task is None or task.hub_dataset is None:
        return name, None, split
    return task.hub_dataset.id, task.hub_dataset.config, task.hub_dataset.split(split)


def finetune_card_results(result: FinetuneResult, path: str | Path = FinetuneResult.FILE_NAME) -> dict[str, Any]:
    """The card's ``finetune`` key of a finished `FinetuneResult`: per task, the report split's metric means (None,
    an undefined score, becomes NaN), their standard deviations, the number of seeds, the learning rate chosen, the
    chance level of each metric on the same split and the main metric's verdict against it ("unknown" for results
    written before verdicts were recorded).
    Raises ValueError, naming `path`, for an unfinished run; `normalize_results` checks the values."""
    if result.complete is not True:
        done = len(result.cells) if isinstance(result.cells, list) else 0
        raise ValueError(
            f"{path} holds an unfinished fine-tuning run ({done} cell(s) done, 'complete' is not true): its scores "
            "are not final. Rerun `hf-posenc finetune` with the same settings to finish it, then export."
        )
    if not isinstance(result.tasks, dict) or not result.tasks:
        raise ValueError(f"{path}['tasks'] must be a non-empty dict of task name -> summary; got {result.tasks!r}.")
    card: dict[str, Any] = {}
    for name, summary in result.tasks.items():
        where = f"{path}['tasks'][{name!r}]"
        if not isinstance(summary, dict) or not isinstance(summary.get("report"), dict):
            raise ValueError(f"{where} must be a dict with a 'report' dict of metric -> {{'mean', 'std'}}.")
        report = summary["report"]
        for metric, values in report.items():
            if not isinstance(values, dict) or "mean" not in values:
                raise ValueError(f"{where}['report'][{metric!r}] must be a dict with a 'mean'; got {values!r}.")
        entry = {
            "split": summary.get("report_split"),
            "metrics": {metric: _undefined_as_nan(values["mean"]) for metric, values in report.items()},
            "std": {metric: values["std"] for metric, values in report.items() if values.get("std") is not None},
            "main_metric": summary.get("main_metric"),
            "seeds": len(summary["seeds"]) if isinstance(summary.get("seeds"), list) else summary.get("seeds"),
            "learning_rate": summary.get("best_learning_rate"),
            "kind": summary.get("kind"),
            "examples": (summary.get("examples") or {}).get(summary.get("report_split"))
            if isinstance(summary.get("examples"), dict)
            else None,
            "chance": {metric: value for metric, value in (summary.get("chance") or {}).items() if value is not None},
            "verdict": summary.get("verdict") or "unknown",
        }
        card[name] = {key: value for key, value in entry.items() if value not in (None, {})}
    return {"finetune": card}


def _undefined_as_nan(value):
    return float("nan") if value is None else value

"""The fine-tuning runner: fine-tune one model on downstream tasks over a grid of learning rates and seeds.

`finetune_tasks("outputs/demo-attenuated", ["sentiment"], learning_rates=[1e-4, 3e-4], seeds=[1, 2, 3])` runs every
(task, learning rate, seed) cell with `transformers.Trainer` (dynamic padding), scores the task's selection split and
its report split, keeps for each task the learning rate with the best mean selection score over the seeds, and
reports the mean and standard deviation over the seeds of the report split's scores at that rate, next to the chance
level of that same report sample (`chance_scores`: the metrics of always answering its majority label, or its mean
label for regression) and the verdict of `hf_posenc.readings.chance_verdict` on the main metric. It writes
``finetune_results.json`` (a `FinetuneResult`) after every cell, so a run that is interrupted and started again with
the same settings skips the cells already done, and ``finetune_table.txt`` at the end. ``hf-posenc finetune`` and
``examples/finetune.py`` call it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from ..readings import chance_verdict, majority_label
from ..results import FinetuneResult, weights_fingerprint
from ..storage import atomic_output, require_model_folder
from ..tasks.base import Task, TaskKind
from ..tasks.registry import get_task
from .finetune import (
    FinetuneArguments,
    default_epochs,
    default_learning_rate,
    finetune,
    load_classifier,
    load_tokenizer,
    predict,
    references,
    saved_config,
)

__all__ = [
    "DEFAULT_MAX_EVAL_SAMPLES",
    "DEFAULT_MAX_TRAIN_SAMPLES",
    "chance_scores",
    "check_data_files",
    "finetune_tasks",
    "format_finetune_table",
    "load_task_splits",
    "summarize_task",
]

TABLE_FILE = "finetune_table.txt"
# Small enough that one task fine-tunes a tiny model in a few minutes on two CPU cores.
DEFAULT_MAX_TRAIN_SAMPLES = 2000
DEFAULT_MAX_EVAL_SAMPLES = 1000
DEFAULT_SEEDS = (42,)


def _sample(examples: list[dict], limit: int | None, seed: str) -> list[dict]:
    """At most ``limit`` examples, drawn with a fixed seed and kept in their order (the same for every cell)."""
    if limit is None or len(examples) <= limit:
        return examples
    chosen = set(random.Random(seed).sample(range(len(examples)), limit))
    return [example for index, example in enumerate(examples) if index in chosen]


def _check_labels_in_train(task: Task, train: list[dict], split: str, examples: list[dict]) -> None:
    """A class that the train split never shows cannot be learnt; it means the files do not belong together."""
    if task.kind not in (TaskKind.SINGLE_SENTENCE, TaskKind.SENTENCE_PAIR):
        return
    seen = {example[task.label_column] for example in train}
    unseen = sorted({str(example[task.label_column]) for example in examples} - {str(label) for label in seen})
    if unseen:
        raise ValueError(
            f"task {task.name}: the {split} split has the label(s) {', '.join(unseen)}, which the train split never "
            f"has (train labels: {', '.join(sorted(map(str, seen)))}); give a train file that covers every class, "
            "or drop those examples."
        )


def _wanted_splits(task: Task) -> list[str]:
    return [task.train_split] + ([task.selection_split] if task.selection_split else []) + [task.report_split]


def check_data_files(task: Task, data_files: dict[str, str | os.PathLike] | None) -> dict:
    """``data_files`` without unset entries; a ValueError when one names a split whose file ``task`` never reads."""
    data_files = {split: path for split, path in (data_files or {}).items() if path is not None}
    file_splits = {task.file_split(split) for split in _wanted_splits(task)}
    unused = sorted(set(data_files) - file_splits)
    if unused:
        raise ValueError(
            f"task {task.name} reads no {' or '.join(unused)} file (it reads {', '.join(sorted(file_splits))}"
            + (f"; its {task.held_out.split} split is held out of train" if task.held_out else "")
            + f"); drop --{unused[0]}_file."
        )
    return data_files


def load_task_splits(
    task: Task,
    data_files: dict[str, str | os.PathLike] | None = None,
    max_train_samples: int | None = DEFAULT_MAX_TRAIN_SAMPLES,
    max_eval_samples: int | None = DEFAULT_MAX_EVAL_SAMPLES,
) -> dict[str, list[dict]]:
    """The train, selection and report splits of ``task`` (capped at the sample sizes), from the user's
    ``data_files`` (split name -> file; "train", "validation", "test") or the task's own data."""
    data_files = check_data_files(task, data_files)
    wanted = _wanted_splits(task)
    splits = {split: task.load(split, data_files.get(task.file_split(split))) for split in dict.fromkeys(wanted)}
    for split in wanted[1:]:
        _check_labels_in_train(task, splits[task.train_split], split, splits[split])
    for split, examples in splits.items():
        if not examples:
            raise ValueError(f"task {task.name}: the {split} split holds no example.")
        cap, seed = (max_train_samples, "train") if split == task.train_split else (max_eval_samples, "eval")
        splits[split] = _sample(examples, cap, f"{task.name} {split} {seed}")
    return splits


def _mean_std(values: list[float | None]) -> dict:
    numbers = [value for value in values if value is not None and value == value]
    return {
        "mean": statistics.fmean(numbers) if numbers else None,
        "std": statistics.stdev(numbers) if len(numbers) > 1 else (0.0 if numbers else None),
        "values": values,
    }


def chance_scores(task: Task, examples: Sequence[dict]) -> dict[str, float | None]:
    """The chance level of ``examples`` (a task's report sample) for each of ``task``'s metrics: the metric applied to
    a constant answer, the sample's majority label (`hf_posenc.readings.majority_label`; over all words for token
    classification) or, for regression, the mean of its labels. None where the metric of a constant answer is
    undefined (a correlation)."""
    gold = references(examples, task)
    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        majority = majority_label([label for labels in gold for label in labels])
        constant = [[majority] * len(labels) for labels in gold]
    elif task.kind is TaskKind.REGRESSION:
        constant = [statistics.fmean(gold)] * len(gold)
    else:
        constant = [majority_label(gold)] * len(gold)
    return {
        metric: float(value) if value is not None and value == value else None
        for metric, value in task.score(constant, gold).items()
    }


def _reading(task: Task, report: dict, chance: dict | None, examples: int | None) -> dict:
    """`chance_verdict` of the main metric's mean over the seeds against its chance level. The noise is the std over
    the seeds when at least two seeds scored, else (for accuracy only: it is an accuracy's standard error) the
    binomial standard error on the ``examples`` scored; otherwise the verdict is "unknown"."""
    values = report.get(task.main_metric) or {}
    scored = [value for value in values.get("values") or [] if value is not None and value == value]
    return chance_verdict(
        values.get("mean"),
        (chance or {}).get(task.main_metric),
        seed_std=values.get("std") if len(scored) >= 2 else None,
        n=examples if task.main_metric == "accuracy" else None,
    )


def summarize_task(
    task: Task, cells: list[dict], chance: dict[str, float | None] | None = None, examples: int | None = None
) -> dict:
    """The best learning rate of ``task``'s cells (highest mean main metric over the seeds on the selection split;
    the first rate when the task has no selection split) and the report split's scores at that rate, mean and
    sample standard deviation over the seeds; with the ``chance`` level of each metric on the report sample
    (`chance_scores`, None when unknown) and the main metric's ``verdict`` against it (``reading``: the whole
    `chance_verdict`), ``examples`` being the number of report examples scored."""
    by_rate: dict[float, list[dict]] = {}
    for cell in cells:
        by_rate.setdefault(cell["learning_rate"], []).append(cell)

    def selection_score(rate: float) -> float:
        values = [(cell["selection"] or {}).get(task.main_metric) for cell in by_rate[rate]]
        numbers = [value for value in values if value is not None and value == value]
        return statistics.fmean(numbers) if numbers else float("-inf")

    rates = list(by_rate)
    best = max(rates, key=selection_score) if task.selection_split else rates[0]
    chosen = by_rate[best]
    metrics = list(chosen[0]["report"])
    report = {metric: _mean_std([cell["report"].get(metric) for cell in chosen]) for metric in metrics}
    reading = _reading(task, report, chance, examples)
    return {
        "kind": task.kind.value,
        "main_metric": task.main_metric,
        "selection_split": task.selection_split,
        "report_split": task.report_split,
        "best_learning_rate": best,
        "selection_by_learning_rate": {str(rate): selection_score(rate) for rate in rates},
        "seeds": [cell["seed"] for cell in chosen],
        "report": report,
        "chance": {metric: (chance or {}).get(metric) for metric in metrics},
        "verdict": reading["verdict"],
        "reading": reading,
    }


def _percent(value: float | None) -> str:
    return f"{100 * value:.1f}" if value is not None else "n/a"


def format_finetune_table(result: FinetuneResult) -> str:
    """One row per task: the best learning rate, the main metric's verdict against chance, then each reported metric
    as mean ± std (in %) over the seeds with its chance level on the same sample ("n/a" where unknown, as in results
    written before chance levels were recorded)."""
    header = ["Task", "Split", "Best LR", "Seeds", "Verdict", "Scores (mean ± std, chance level; %)"]
    rows = []
    for name, summary in result.tasks.items():
        chance = summary.get("chance") or {}
        scores = ", ".join(
            (
                f"{metric} {_percent(values['mean'])} ± {_percent(values['std'])}"
                if values["mean"] is not None
                else f"{metric} n/a"
            )
            + f" (chance {_percent(chance.get(metric))})"
            for metric, values in summary["report"].items()
        )
        main = summary.get("main_metric")
        verdict = summary.get("verdict") or "unknown"
        rows.append(
            [
                name,
                summary["report_split"],
                f"{summary['best_learning_rate']:g}",
                str(len(summary["seeds"])),
                f"{verdict} ({main})" if main else verdict,
                scores,
            ]
        )
    widths = [max(len(row[column]) for row in [header] + rows) for column in range(len(header))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip() for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


# TrainingArguments fields that change how a run reports, not what it computes: a rerun that changes only these
# continues the earlier cells.
SCORE_NEUTRAL_OPTIONS = frozenset(
    {"report_to", "disable_tqdm", "logging_steps", "logging_strategy", "logging_first_step", "run_name", "project"}
)


def _previous_result(
    output_dir: Path, model_path: str, model: str, settings: dict, overwrite: bool
) -> FinetuneResult | None:
    """The results file to continue, or None to start afresh; refuses another model's or other settings' file."""
    if overwrite or not FinetuneResult.exists_in(output_dir):
        return None
    earlier = FinetuneResult.load(output_dir)
    if earlier.settings.get("model_path") != model_path:
        state = "finished " if earlier.complete else ""
        raise FileExistsError(
            f"{FinetuneResult.path_in(output_dir)} holds the {state}fine-tuning results of "
            f"{earlier.settings.get('model_path', earlier.model)!r}, not of {model_path!r}; choose another "
            "--output_dir or pass --overwrite_output_dir to replace them."
        )
    if "model_weights" in earlier.settings and earlier.settings["model_weights"] != settings["model_weights"]:
        raise FileExistsError(
            f"{FinetuneResult.path_in(output_dir)} holds the results of other weights than those now in {model_path} "
            "(the model was retrained or replaced since); choose another --output_dir, or pass "
            "--overwrite_output_dir to score the new weights from scratch."
        )
    if earlier.settings != settings:
        changed = sorted(
            key for key in set(settings) | set(earlier.settings) if settings.get(key) != earlier.settings.get(key)
        )
        raise FileExistsError(
            f"{FinetuneResult.path_in(output_dir)} was written with other settings ({', '.join(changed)}); its cells "
            "cannot be reused. Run with the same settings to continue it, or pass --overwrite_output_dir."
        )
    return earlier


def finetune_tasks(
    model_dir: str | Path,
    tasks: Sequence[str | Task],
    *,
    learning_rates: Sequence[float] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    training: FinetuneArguments | None = None,
    output_dir: str | Path | None = None,
    max_train_samples: int | None = DEFAULT_MAX_TRAIN_SAMPLES,
    max_eval_samples: int | None = DEFAULT_MAX_EVAL_SAMPLES,
    data_files: dict[str, str | os.PathLike] | None = None,
    tokenizer: str | Path | None = None,
    model_name: str | None = None,
    overwrite: bool = False,
    trust_remote_code: bool = False,
    log=print,
) -> FinetuneResult:
    """Fine-tune the model in ``model_dir`` on each task for every learning rate and seed; return and save the
    `FinetuneResult` (``output_dir``, default ``outputs/finetune-<model folder name>``).

    ``training`` holds the other settings (its learning rate and seed are replaced by the grid's). ``data_files``
    maps "train"/"validation"/"test" to the user's files (GLUE without the Hub). ``max_train_samples`` and
    ``max_eval_samples`` cap each split with a fixed seeded sample (None: all). ``log`` receives one line per cell.
    """
    model_dir = require_model_folder(model_dir)
    task_list = [task if isinstance(task, Task) else get_task(task) for task in tasks]
    if not task_list:
        raise ValueError("no task to fine-tune on; name at least one with --task NAME.")
    for task in task_list:  # before anything trains
        check_data_files(task, data_files)
    training = training or FinetuneArguments()
    config = saved_config(model_dir)
    if learning_rates is None:
        learning_rates = [default_learning_rate(config)]
        log(
            f"learning rate {learning_rates[0]:g}: the default for this model's width (pass --learning_rates to choose)"
        )
    if training.num_train_epochs is None:
        training = dataclasses.replace(training, num_train_epochs=default_epochs(config))
        if training.max_steps <= 0:  # max_steps, when set, decides the length instead
            log(f"{training.num_train_epochs:g} epochs: the default for this model's width (pass --num_train_epochs)")
    if not learning_rates or any(not 0 < rate < math.inf for rate in learning_rates):
        raise ValueError(f"--learning_rates must be one or more finite numbers above 0 (got {list(learning_rates)}).")
    if not seeds:
        raise ValueError("--seeds needs at least one seed.")
    for flag, values in (("--learning_rates", learning_rates), ("--seeds", seeds)):
        if len(set(values)) < len(values):  # a repeated seed would count one run twice and report a spread of 0
            raise ValueError(f"{flag} repeats a value ({list(values)}); give each one once.")
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1 (got {value}); leave it out to use the whole split.")
    output_dir = Path(output_dir) if output_dir is not None else Path("outputs") / f"finetune-{model_dir.name}"
    settings = {
        "model_path": str(model_dir.resolve()),
        "model_weights": weights_fingerprint(model_dir),
        **{key: value for key, value in dataclasses.asdict(training).items() if key not in ("learning_rate", "seed")},
        "trainer_options": {
            key: value for key, value in training.trainer_options.items() if key not in SCORE_NEUTRAL_OPTIONS
        },
        "max_train_samples": max_train_samples,
        "max_eval_samples": max_eval_samples,
        "data_files": {split: str(path) for split, path in sorted((data_files or {}).items()) if path is not None},
    }
    result = _previous_result(output_dir, settings["model_path"], model_name or model_dir.name, settings, overwrite)
    token_processor = load_tokenizer(
        tokenizer if tokenizer is not None else model_dir, trust_remote_code=trust_remote_code
    )

    from transformers import set_seed

    for task in task_list:
        grid = [(task.name, rate, seed) for rate in learning_rates for seed in seeds]
        done = {(cell["task"], cell["learning_rate"], cell["seed"]) for cell in result.cells} if result else set()
        if result is not None and task.name in result.tasks and done.issuperset(grid):
            log(f"{task.name}: all {len(grid)} cell(s) done before, skipped")
            # Summarize this grid's cells again (an earlier run may have had more); the data need not be read, unless
            # the results were written before chance levels were recorded.
            cells = [cell for cell in result.cells if (cell["task"], cell["learning_rate"], cell["seed"]) in grid]
            earlier = result.tasks[task.name]
            examples = earlier.get("examples", {})
            chance, scored = earlier.get("chance"), examples.get(task.report_split)
            if chance is None:
                report = load_task_splits(task, data_files, max_train_samples, max_eval_samples)[task.report_split]
                chance, scored = chance_scores(task, report), len(report)
            summary = summarize_task(task, cells, chance, scored)
            result.tasks[task.name] = {**summary, "examples": examples}
            continue
        splits = load_task_splits(task, data_files, max_train_samples, max_eval_samples)
        chance = chance_scores(task, splits[task.report_split])
        for number, (_, rate, seed) in enumerate(grid, start=1):
            cell_name = f"{task.name} lr={rate:g} seed={seed}"
            if (task.name, rate, seed) in done:
                log(f"{cell_name}: done before, skipped")
                continue
            log(f"{cell_name} (cell {number}/{len(grid)}): fine-tuning on {len(splits[task.train_split])} examples")
            started = time.perf_counter()
            set_seed(seed)  # the fresh head is drawn at load time
            model = load_classifier(model_dir, task, trust_remote_code=trust_remote_code)
            if result is None:
                result = FinetuneResult(model=model_name or model_dir.name, model_type=model.config.model_type)
                result.settings = settings
            arguments = dataclasses.replace(training, learning_rate=rate, seed=seed)
            trainer = finetune(
                model,
                token_processor,
                splits[task.train_split],
                output_dir=output_dir / "trainer" / f"{task.name}-lr{rate:g}-seed{seed}",  # its own TensorBoard run
                task=task,
                arguments=arguments,
            )

            def score(split: str | None) -> dict | None:
                if split is None:
                    return None
                examples = splits[split]
                predicted = predict(trainer, examples, task, arguments.max_seq_length)
                return task.score(predicted, references(examples, task))

            cell = {
                "task": task.name,
                "learning_rate": rate,
                "seed": seed,
                "selection": score(task.selection_split),
                "report": score(task.report_split),
                "train_examples": len(splits[task.train_split]),
                "seconds": round(time.perf_counter() - started, 1),
            }
            result.cells.append(cell)
            result.save(output_dir)
            main = cell["report"].get(task.main_metric)
            log(f"{cell_name}: {task.report_split} {task.main_metric} {main:.4f} ({cell['seconds']} s)")
        task_cells = [cell for cell in result.cells if (cell["task"], cell["learning_rate"], cell["seed"]) in grid]
        result.tasks[task.name] = {
            **summarize_task(task, task_cells, chance, len(splits[task.report_split])),
            "examples": {split: len(examples) for split, examples in splits.items()},
        }
        result.save(output_dir)
    result.complete = True
    result.save(output_dir)
    with atomic_output(output_dir / TABLE_FILE, encoding="utf-8") as handle:
        handle.write(format_finetune_table(result) + "\n")
    return result

"""The GLUE tasks (Wang et al. 2019): from the Hugging Face Hub, or from local files in the same layout.

Without a path, a split comes from ``datasets.load_dataset("nyu-mll/glue", <config>)`` (needs the Hub). With a
path, it is read from a local TSV (``.tsv``), CSV (``.csv``) or JSON lines (``.json``/``.jsonl``) file whose
columns are named as in the Hub dataset: ``sentence`` (CoLA, SST-2), ``sentence1``/``sentence2`` (MRPC, STS-B,
RTE, WNLI), ``question``/``sentence`` (QNLI), ``question1``/``question2`` (QQP), ``premise``/``hypothesis`` (MNLI),
and ``label`` (a class id as on the Hub, or a class name; a number for STS-B).

GLUE's test labels are hidden, so the score reported is the one on ``validation`` (MNLI-m: the matched validation
set, MNLI-mm: the mismatched one). Learning rates are selected on ``development``: 10% of the train split (at
most 2,000 examples) held out with seed 0, so the reported split never selects. It is cut by the first text column
(the sentence, premise, first question): MNLI pairs three hypotheses with each premise and QNLI asks each question of
several sentences, so a cut by example would train on most development premises and questions.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from .base import HeldOut, HubDataset, Task, TaskKind
from .metrics import f1_accuracy_scores, matthews_correlation_scores, pearson_spearman_scores
from .scoring import accuracy_scores

__all__ = ["GLUE_TASKS", "load_glue", "read_task_file"]

GLUE_DATASET = "nyu-mll/glue"
_NLI_LABELS = ("entailment", "neutral", "contradiction")
_BINARY_NLI_LABELS = ("entailment", "not_entailment")


def _read_rows(file: Path) -> list[dict]:
    try:
        return _decoded_rows(file)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{file} is not UTF-8 text (byte {error.start}: {error.reason}); save it as UTF-8, or give the task's "
            ".tsv, .csv or .jsonl file rather than a binary one."
        ) from None
    except csv.Error as error:  # a NUL byte or a broken quote: a binary file or another format
        raise ValueError(
            f"{file} cannot be read as {file.suffix.lower()[1:].upper()} ({error}); give a text file."
        ) from None


def _decoded_rows(file: Path) -> list[dict]:
    suffix = file.suffix.lower()
    with open(file, encoding="utf-8", newline="") as handle:
        if suffix in (".json", ".jsonl"):
            rows = []
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{file}, line {line_number}: not valid JSON ({error.msg}).") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{file}, line {line_number}: expected a JSON object per line.")
                rows.append(row)
            return rows
        if suffix in (".tsv", ".csv"):
            # GLUE's TSVs hold quotes inside sentences: read tab-separated files without quote handling.
            reader = csv.DictReader(
                handle, delimiter="\t" if suffix == ".tsv" else ",", quoting=csv.QUOTE_NONE if suffix == ".tsv" else 0
            )
            return list(reader)
    raise ValueError(f"{file}: unknown file type {suffix!r}; give a .tsv, .csv, .json or .jsonl file.")


def _label(value, label_names: Sequence[str], where: str):
    """A class name (from an id or a name), or a float for regression."""
    if not label_names:
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: label {value!r} is not a number; this task's label is a score.") from None
        if not math.isfinite(score):  # one NaN makes every correlation NaN: the run would report no score at all
            raise ValueError(f"{where}: label {value!r} is not a finite number; fix the score or drop the row.")
        return score
    if isinstance(value, str) and value in label_names:
        return value
    try:
        index = int(value)
    except (TypeError, ValueError):
        index = None
    if index is not None and 0 <= index < len(label_names):
        return label_names[index]
    hidden = " (GLUE hides its test labels as -1: score on the validation split)" if index == -1 else ""
    raise ValueError(
        f"{where}: label {value!r} is not one of {', '.join(label_names)} nor a class id 0-{len(label_names) - 1}"
        f"{hidden}; fix the label or drop the row."
    )


def read_task_file(
    path: str | os.PathLike, text_columns: Sequence[str], label_column: str, label_names: Sequence[str]
) -> list[dict]:
    """The rows of a local TSV, CSV or JSON lines file as examples with the text columns and the label (a class
    name, or a float when ``label_names`` is empty). Raises ValueError naming missing columns or a bad label."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"task file not found: {file}; pass an existing .tsv, .csv or .jsonl file.")
    rows = _read_rows(file)
    if not rows:
        raise ValueError(f"{file} holds no example.")
    needed = [*text_columns, label_column]
    missing = [column for column in needed if column not in rows[0]]
    if missing:
        raise ValueError(
            f"{file} lacks the column(s) {', '.join(missing)}; this task reads the columns {', '.join(needed)} "
            f"(found: {', '.join(map(str, rows[0]))})."
        )
    examples = []
    for index, row in enumerate(rows):
        # A JSON line may leave a column out; a short CSV or TSV row reads it as None.
        missing = [column for column in needed if row.get(column) is None]
        if missing:
            raise ValueError(
                f"{file}, example {index + 1}: no value in the column(s) {', '.join(missing)}; every example needs "
                f"{', '.join(needed)}. Fill them in or drop the row."
            )
        texts = {column: row[column] for column in text_columns}
        if any(not isinstance(text, str) for text in texts.values()):
            raise ValueError(f"{file}, example {index + 1}: an empty or non-text value in {', '.join(text_columns)}.")
        label = _label(row[label_column], label_names, f"{file}, example {index + 1}")
        examples.append({**texts, label_column: label})
    return examples


def load_glue(
    split: str,
    path: str | os.PathLike | None,
    *,
    config: str,
    hub_splits: dict[str, str],
    text_columns: Sequence[str],
    label_names: Sequence[str],
) -> list[dict]:
    """One split of a GLUE task: from ``path`` when given, else from the Hub dataset ``nyu-mll/glue``."""
    if path is not None:
        return read_task_file(path, text_columns, "label", label_names)
    import datasets

    try:
        rows = datasets.load_dataset(GLUE_DATASET, config, split=hub_splits[split])
    except Exception as error:  # network, Hub or cache errors come in many types
        raise RuntimeError(
            f"cannot load {GLUE_DATASET} ({config}, {hub_splits[split]}) from the Hugging Face Hub "
            f"({str(error).splitlines()[0] if str(error) else type(error).__name__}); without Hub access pass "
            "--train_file and --validation_file in the Hub dataset's layout (.tsv, .csv or .jsonl)."
        ) from error
    where = f"{GLUE_DATASET} {config} {hub_splits[split]}"
    return [
        {**{column: row[column] for column in text_columns}, "label": _label(row["label"], label_names, where)}
        for row in rows
    ]


def _glue_task(
    name: str,
    config: str,
    kind: TaskKind,
    text_columns: tuple[str, ...],
    label_names: tuple[str, ...],
    metric,
    main_metric: str,
    description: str,
    validation: str = "validation",
) -> Task:
    hub_splits = {"train": "train", "validation": validation}
    return Task(
        name=name,
        kind=kind,
        text_columns=text_columns,
        label_column="label",
        label_names=label_names,
        loader=partial(
            load_glue, config=config, hub_splits=hub_splits, text_columns=text_columns, label_names=label_names
        ),
        splits=("train", "development", "validation"),
        train_split="train",
        report_split="validation",
        selection_split="development",
        held_out=HeldOut("development", 0.1, seed=0, most=2000, group_by=text_columns[0]),
        metric=metric,
        main_metric=main_metric,
        description=f"GLUE {description}",
        hub_dataset=HubDataset(GLUE_DATASET, config, {"validation": validation}),
    )


_PAIR, _SINGLE = TaskKind.SENTENCE_PAIR, TaskKind.SINGLE_SENTENCE
GLUE_TASKS = {
    task.name: task
    for task in (
        _glue_task(
            "cola",
            "cola",
            _SINGLE,
            ("sentence",),
            ("unacceptable", "acceptable"),
            matthews_correlation_scores,
            "matthews_correlation",
            "CoLA: grammatical acceptability (Matthews correlation)",
        ),
        _glue_task(
            "sst2",
            "sst2",
            _SINGLE,
            ("sentence",),
            ("negative", "positive"),
            accuracy_scores,
            "accuracy",
            "SST-2: sentiment of movie review sentences (accuracy)",
        ),
        _glue_task(
            "mrpc",
            "mrpc",
            _PAIR,
            ("sentence1", "sentence2"),
            ("not_equivalent", "equivalent"),
            f1_accuracy_scores,
            "f1",
            "MRPC: paraphrase (F1, accuracy)",
        ),
        _glue_task(
            "qqp",
            "qqp",
            _PAIR,
            ("question1", "question2"),
            ("not_duplicate", "duplicate"),
            f1_accuracy_scores,
            "f1",
            "QQP: duplicate questions (F1, accuracy)",
        ),
        _glue_task(
            "stsb",
            "stsb",
            TaskKind.REGRESSION,
            ("sentence1", "sentence2"),
            (),
            pearson_spearman_scores,
            "pearson",
            "STS-B: sentence similarity from 0 to 5 (Pearson, Spearman)",
        ),
        _glue_task(
            "mnli-m",
            "mnli",
            _PAIR,
            ("premise", "hypothesis"),
            _NLI_LABELS,
            accuracy_scores,
            "accuracy",
            "MNLI, matched validation set (accuracy)",
            validation="validation_matched",
        ),
        _glue_task(
            "mnli-mm",
            "mnli",
            _PAIR,
            ("premise", "hypothesis"),
            _NLI_LABELS,
            accuracy_scores,
            "accuracy",
            "MNLI, mismatched validation set (accuracy)",
            validation="validation_mismatched",
        ),
        _glue_task(
            "qnli",
            "qnli",
            _PAIR,
            ("question", "sentence"),
            _BINARY_NLI_LABELS,
            accuracy_scores,
            "accuracy",
            "QNLI: does the sentence answer the question (accuracy)",
        ),
        _glue_task(
            "rte",
            "rte",
            _PAIR,
            ("sentence1", "sentence2"),
            _BINARY_NLI_LABELS,
            accuracy_scores,
            "accuracy",
            "RTE: textual entailment (accuracy)",
        ),
        _glue_task(
            "wnli",
            "wnli",
            _PAIR,
            ("sentence1", "sentence2"),
            ("not_entailment", "entailment"),
            accuracy_scores,
            "accuracy",
            "WNLI: Winograd pronoun resolution as entailment (accuracy)",
        ),
    )
}

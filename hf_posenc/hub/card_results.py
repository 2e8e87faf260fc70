"""What a model card can show: `CardResults`, the typed schema of the `results` dict that `render_card` and `export`
take, and `normalize_results`, which checks a dict against it.

Every field is optional and the card shows only what is present. Pretraining and probing fill it through their own
typed results (`hf_posenc.results.PretrainResult.card_results()`, `ProbeResult.card_results()`), fine-tuning through
`hf_posenc.hub.downstream.finetune_card_results(FinetuneResult)`; a user may also pass a hand-written dict. The field types are the schema: `normalize_results` converts each value by its field's type.

`index_results` is what the card's model-index metadata may list (no score that is not above chance), and
`card_context` the template variables of the parts this schema adds (the probe's samples and seed).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.metrics import SUMMARY_METRICS, attention_results  # noqa: F401  (re-exported by hub)
from ..readings import NOT_ABOVE_CHANCE
from ..results import perplexity
from ..tasks.base import TaskKind
from ..tasks.probes import PROBE_NAMES, STILL_ENTAILMENT
from .downstream import FINETUNE_FIELDS, FINETUNE_VERDICTS

# The probes in the paper's order; "shuffle-N" for other windows and STILL_ENTAILMENT are accepted as well.
PROBE_ORDER = ("original", *PROBE_NAMES)


@dataclass(frozen=True)
class CardResults:
    """The numbers and descriptions a model card shows (every field optional).

    Accuracies are fractions in [0, 1]; NaN in a metric means "undefined" and is shown as such on the card.
    """

    # ---- data and training
    variant: str | None = None  # checked against the config's variant
    dataset: str | None = None  # a Hub dataset id ("wikitext"), or a description with spaces, or a local file
    dataset_name: str | None = None  # pretty name (defaults to `dataset`)
    dataset_config: str | None = None  # e.g. "wikitext-103-raw-v1"
    train_steps: int | None = None
    train_loss: float | None = None  # mean training loss (Trainer's training_loss)
    max_seq_length: int | None = None
    tokenizer: str | None = None  # `export` fills it from the tokenizer when absent
    # ---- evaluation (masked-language modelling on held-out text)
    eval_loss: float | None = None
    perplexity: float | None = None  # defaults to hf_posenc.results.perplexity(eval_loss)
    # ---- attention (hf_posenc.metrics.summarize; `attention_results` converts its output)
    locality: float | None = None
    symmetry: float | None = None
    symmetry_scale_aware: float | None = None
    # one dict per layer: {"layer": 0, "locality": 0.5, "symmetry": 0.8, "symmetry_scale_aware": 0.7}
    per_layer: list[dict[str, Any]] = field(default_factory=list)
    measured_on: str | None = None  # e.g. "64 validation sequences of 128 tokens"
    plots: list[str] = field(default_factory=list)  # image files; `export` copies them into the folder's plots/
    # ---- word-order probes (hf_posenc.probing): probe name -> accuracy, e.g. {"original": 0.81, "role-swap": 0.31}
    probes: dict[str, float] = field(default_factory=dict)
    probe_dataset: str | None = None  # default "stanfordnlp/snli"
    # the SNLI accuracy of always answering the test sample's majority label, and hf_posenc.readings.chance_verdict's
    # verdict of the "original" accuracy against it; "not above chance" hides the probe deltas on the card
    probe_chance: float | None = None
    probe_verdict: str | None = None
    # the probe's samples and the seed of its fine-tuning (hf_posenc.results.ProbeResult), shown beside its table
    probe_train_pairs: int | None = None
    probe_test_pairs: int | None = None
    probe_seed: int | None = None
    probe_learning_rate: float | None = None
    # where the probe's SNLI pairs came from: {"train": ..., "test": ...} (the PyPI copy, or the user's files)
    probe_data: dict[str, str] = field(default_factory=dict)
    # the model's licence for the card's metadata (an SPDX-style id such as "apache-2.0"; render_card's `license`
    # argument wins); the licences of the data it was trained and probed on stay the data's own
    license: str | None = None
    # ---- downstream tasks (hf-posenc finetune): task name -> {"split", "metrics": {name: mean}, optional
    # "main_metric", "std": {name: std}, "seeds", "learning_rate", "kind", "examples"}; see hf_posenc.hub.downstream
    finetune: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, source: str = "results") -> CardResults:
        """Check `values` and convert each to its field's type (tensors and numpy scalars to float, paths to str).
        Raises ValueError naming `source`, the key and what is expected."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise ValueError(
                f"{source} must be a dict of the keys of hf_posenc.hub.CardResults; got {type(values).__name__}."
            )
        known = cls.field_names()
        unknown = sorted(str(key) for key in set(values) - set(known))
        if unknown:
            raise ValueError(f"Unknown key(s) in {source}: {', '.join(unknown)}. Known keys: {', '.join(known)}.")
        types = typing.get_type_hints(cls)
        converted: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            name = f"{source}[{key!r}]"
            if key == "per_layer":
                converted[key] = _per_layer(name, value)
            elif key == "probes":
                converted[key] = _probes(name, value)
            elif key == "finetune":
                converted[key] = _finetune(name, value)
            elif key == "plots":
                converted[key] = _plots(name, value)
            elif key == "probe_data":
                if not isinstance(value, Mapping):
                    raise ValueError(f"{name} must map a split ('train', 'test') to where its pairs came from.")
                converted[key] = {str(split): _text(f"{name}[{split!r}]", text) for split, text in value.items()}
            elif types[key] == (float | None):
                converted[key] = _number(name, value)
            elif types[key] == (int | None):
                converted[key] = _count(name, value)
            else:
                converted[key] = _text(name, value)
        if "perplexity" not in converted and "eval_loss" in converted:
            converted["perplexity"] = perplexity(converted["eval_loss"])
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set (no None, no empty list or dict)."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value not in (None, [], {})}


def normalize_results(results: Mapping[str, Any] | None, source: str = "results") -> dict[str, Any]:
    """Check a `results` dict against `CardResults` and return it with plain Python values: floats for metrics,
    ints for counts, strings for text and paths. Raises ValueError naming the offending key and what it expects."""
    return CardResults.from_mapping(results, source).to_dict()


def index_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized `results` the model-index metadata may list: a probe or fine-tuning score whose verdict is
    "not above chance" is not a result, so its accuracies are left out there (the card's prose keeps them, with
    their chance level and verdict)."""
    listed = dict(results)
    if listed.get("probe_verdict") == NOT_ABOVE_CHANCE:
        listed.pop("probes", None)
    tasks = {
        name: entry for name, entry in listed.get("finetune", {}).items() if entry.get("verdict") != NOT_ABOVE_CHANCE
    }
    if tasks:
        listed["finetune"] = tasks
    else:
        listed.pop("finetune", None)
    return listed


def card_context(results: Mapping[str, Any]) -> dict[str, Any]:
    """Template variables of the card's parts that card_results owns: ``probe_setup`` (the probe's sample sizes
    and seed as one Markdown line, None when unknown) and ``probe_listed`` (whether the probe accuracies are in
    the model-index)."""
    parts = []
    if "probe_train_pairs" in results:
        parts.append(f"fine-tuned on {results['probe_train_pairs']:,} training pairs")
    if "probe_test_pairs" in results:
        parts.append(f"scored on {results['probe_test_pairs']:,} test pairs (each probe built from them)")
    if results.get("probe_learning_rate"):
        parts.append(f"learning rate {results['probe_learning_rate']:g}")
    if "probe_seed" in results:
        parts.append(f"seed {results['probe_seed']}")
    for split, source in sorted((results.get("probe_data") or {}).items()):
        parts.append(f"{split} data: {source}")
    return {
        "probe_setup": "; ".join(parts) if parts else None,
        "probe_listed": bool(results.get("probes")) and results.get("probe_verdict") != NOT_ABOVE_CHANCE,
    }


def _number(name: str, value) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a number; got {value!r}.")
    try:
        return float(value)  # int, float, numpy scalar, 0-d torch tensor
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (a float or a one-element tensor); got {value!r}.") from None


def _count(name: str, value) -> int:
    number = _number(name, value)
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise ValueError(f"{name} must be a whole number >= 0; got {value!r}.")
    return int(number)


def _text(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string; got {value!r}.")
    return value.strip()


def _plots(name: str, value) -> list[str]:
    if isinstance(value, (str, os.PathLike)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of file paths; got {value!r}.")
    if not all(isinstance(path, (str, os.PathLike)) for path in value):
        raise ValueError(f"{name} must be a list of file paths; got {value!r}.")
    names = [Path(path).name for path in value]
    duplicates = sorted({file_name for file_name in names if names.count(file_name) > 1})
    if duplicates:
        raise ValueError(f"{name} has several files named {', '.join(duplicates)}; rename them.")
    return [str(path) for path in value]


def _per_layer(name: str, rows) -> list[dict[str, Any]]:
    if isinstance(rows, Mapping) or not isinstance(rows, (list, tuple)):
        raise ValueError(f"{name} must be a list of dicts like {{'layer': 0, 'locality': 0.5, ...}}; got {rows!r}.")
    normalized = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping) or "layer" not in row:
            raise ValueError(f"{name}[{index}] must be a dict with a 'layer' key; got {row!r}.")
        unknown = sorted(str(key) for key in set(row) - {"layer", *SUMMARY_METRICS})
        if unknown:
            raise ValueError(
                f"{name}[{index}] has unknown key(s) {', '.join(unknown)}; known: layer, {', '.join(SUMMARY_METRICS)}."
            )
        entry = {"layer": _count(f"{name}[{index}]['layer']", row["layer"])}
        for key in SUMMARY_METRICS:
            if row.get(key) is not None:
                entry[key] = _number(f"{name}[{index}][{key!r}]", row[key])
        normalized.append(entry)
    return normalized


def _probes(name: str, probes) -> dict[str, float]:
    if not isinstance(probes, Mapping):
        raise ValueError(f"{name} must be a dict of probe name -> accuracy, e.g. {{'original': 0.81}}; got {probes!r}.")
    normalized = {}
    for probe, value in probes.items():
        if probe not in (*PROBE_ORDER, STILL_ENTAILMENT) and not re.fullmatch(r"shuffle-\d+", str(probe)):
            raise ValueError(
                f"Unknown probe {probe!r} in {name}; known: {', '.join(PROBE_ORDER)}, shuffle-N, {STILL_ENTAILMENT}."
            )
        number = _number(f"{name}[{probe!r}]", value)
        if not 0.0 <= number <= 1.0:
            raise ValueError(
                f"{name}[{probe!r}] = {number} is not a fraction in [0, 1]; give accuracies as fractions (0.81, not 81)."
            )
        normalized[probe] = number
    return normalized


def _finetune(name: str, tasks) -> dict[str, dict[str, Any]]:
    if not isinstance(tasks, Mapping) or not tasks:
        raise ValueError(
            f"{name} must be a non-empty dict of task name -> {{'split': 'test', 'metrics': {{'accuracy': 0.81}}}}; "
            f"got {tasks!r}."
        )
    return {
        _text(f"{name} (a task name)", task): _finetune_task(f"{name}[{task!r}]", entry)
        for task, entry in tasks.items()
    }


def _finetune_task(name: str, entry) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{name} must be a dict with 'split' and 'metrics'; got {entry!r}.")
    unknown = sorted(str(key) for key in set(entry) - set(FINETUNE_FIELDS))
    if unknown:
        raise ValueError(
            f"{name} has unknown field(s) {', '.join(unknown)}; known: "
            + "; ".join(f"{key} ({meaning})" for key, meaning in FINETUNE_FIELDS.items())
            + "."
        )
    for required in ("split", "metrics"):
        if entry.get(required) is None:
            raise ValueError(f"{name} has no {required!r}; give {FINETUNE_FIELDS[required]}.")
    metrics = _metric_dict(f"{name}['metrics']", entry["metrics"])
    if not metrics:
        raise ValueError(f"{name}['metrics'] is empty; give {FINETUNE_FIELDS['metrics']}, e.g. {{'accuracy': 0.81}}.")
    normalized: dict[str, Any] = {"split": _text(f"{name}['split']", entry["split"]), "metrics": metrics}
    if entry.get("main_metric") is not None:
        main = _text(f"{name}['main_metric']", entry["main_metric"])
        if main not in metrics:
            raise ValueError(f"{name}['main_metric'] is {main!r}, not one of its metrics ({', '.join(metrics)}).")
        normalized["main_metric"] = main
    if entry.get("std") is not None:
        std = _metric_dict(f"{name}['std']", entry["std"])
        extra = sorted(set(std) - set(metrics))
        if extra:
            raise ValueError(f"{name}['std'] has metric(s) {', '.join(extra)} that 'metrics' has not; drop them.")
        normalized["std"] = std
    if entry.get("seeds") is not None:
        seeds = _count(f"{name}['seeds']", entry["seeds"])
        if seeds < 1:
            raise ValueError(f"{name}['seeds'] must be at least 1; got {entry['seeds']!r}.")
        normalized["seeds"] = seeds
    if entry.get("learning_rate") is not None:
        rate = _number(f"{name}['learning_rate']", entry["learning_rate"])
        if not rate > 0:
            raise ValueError(f"{name}['learning_rate'] must be a number above 0; got {entry['learning_rate']!r}.")
        normalized["learning_rate"] = rate
    if entry.get("kind") is not None:
        kinds = [kind.value for kind in TaskKind]
        if entry["kind"] not in kinds:
            raise ValueError(f"{name}['kind'] must be {FINETUNE_FIELDS['kind']}; got {entry['kind']!r}.")
        normalized["kind"] = entry["kind"]
    if entry.get("examples") is not None:
        normalized["examples"] = _count(f"{name}['examples']", entry["examples"])
    if entry.get("chance") is not None:
        if not isinstance(entry["chance"], Mapping):
            raise ValueError(f"{name}['chance'] must be {FINETUNE_FIELDS['chance']}; got {entry['chance']!r}.")
        # An unknown chance level (None) is left out: the card shows "–" for it.
        known = {metric: value for metric, value in entry["chance"].items() if value is not None}
        chance = _metric_dict(f"{name}['chance']", known)
        extra = sorted(set(chance) - set(metrics))
        if extra:
            raise ValueError(f"{name}['chance'] has metric(s) {', '.join(extra)} that 'metrics' has not; drop them.")
        if chance:
            normalized["chance"] = chance
    if entry.get("verdict") is not None:
        if entry["verdict"] not in FINETUNE_VERDICTS:
            raise ValueError(f"{name}['verdict'] must be {FINETUNE_FIELDS['verdict']}; got {entry['verdict']!r}.")
        normalized["verdict"] = entry["verdict"]
    return normalized


def _metric_dict(name: str, values) -> dict[str, float]:
    """Metric name -> number; None (a score that is undefined, e.g. a correlation of constant predictions) is NaN."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{name} must be a dict of metric name -> number, e.g. {{'accuracy': 0.81}}; got {values!r}.")
    return {
        _text(f"{name} (a metric name)", metric): math.nan if value is None else _number(f"{name}[{metric!r}]", value)
        for metric, value in values.items()
    }

"""The study spec: which runs to train at which equal budget, how to evaluate them, where to write.

A spec is a YAML or JSON file (see `EXAMPLE_SPEC` and the presets in `presets`). `load_spec(path)` reads it,
`parse_spec(values, source, lines)` checks it and expands its grids into one `RunSpec` per grid point. Every
mistake is a `SpecError` (a ValueError) naming the file and line of the offending entry, raised before anything
trains.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hf_posenc

from .spec_text import SpecError, read_document

__all__ = [
    "EXAMPLE_SPEC",
    "ExtrapolationSpec",
    "PositionSpec",
    "PretrainingSpec",
    "ProbeSpec",
    "ReportSpec",
    "RunSpec",
    "SpecError",
    "StudySpec",
    "TaskSpec",
    "load_spec",
    "parse_spec",
    "spec_from_text",
]

EXAMPLE_SPEC = """\
name: demo
output: outputs/study-demo
seeds: [1]                       # every run's seeds, unless a run names its own
pretraining:                     # shared by every run: equal budget
  size: tiny                     # tiny | mini | small | base
  corpus: stdlib                 # a built-in corpus, or train_file: PATH, or dataset_name: NAME
  max_seq_length: 64
  vocab_size: 2000               # WordPiece trained once, shared by every run
  steps: 300                     # or tokens: 2000000 (steps = tokens / (batch_size * processes * max_seq_length))
  batch_size: 16
  learning_rate: 0.001
  processes: 1                   # > 1: each pretraining runs under `accelerate launch --num_processes N`
  training: {warmup_steps: 30}   # any other TrainingArguments field
runs:
  - variant: rope                # name defaults to the variant
  - {name: alibi, variant: alibi}
  - name: att
    variant: attenuated
    settings: {attenuation_learnable: false}
    grid:                        # one run per combination: att-w0.05-s0.5, att-w0.05-s2, ...
      attenuation_strength: [0.05, 0.5]
      attenuation_symmetry: [0.5, 2]
evaluations:
  tasks:
    - {name: sentiment, learning_rates: [0.0001], seeds: [1], max_train_samples: 500, max_steps: 50}
  probes: {max_train_samples: 500, max_eval_samples: 200, max_steps: 50}
  extrapolation: {lengths: [64, 128, 256], max_tokens: 20000}
  position_attention: {seq_len: 64}
report: {significance: 0.05, bootstrap: 1000}
"""

# Short names of grid parameters in run names (the paper's w and s).
GRID_ALIASES = {"attenuation_strength": "w", "attenuation_symmetry": "s"}
# Config fields that describe the file or are set by the pretraining setup, not by a run.
_NOT_RUN_SETTINGS = {
    "model_type",
    "transformers_version",
    "_name_or_path",
    "architectures",
    "auto_map",
    "vocab_size",
    "pad_token_id",
}


@dataclass
class Where:
    """Locates entries of the spec file for error messages: key path -> 1-based line."""

    source: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def error(self, path: tuple, message: str) -> SpecError:
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return SpecError(f"{self.source}, line {line}: {message}")
        return SpecError(f"{self.source}: {message}")


@dataclass
class PretrainingSpec:
    """The pretraining shared by every run: model size, text, tokenizer, block length and the equal budget."""

    size: str = "tiny"
    corpus: str = "default"
    train_file: str | None = None
    dataset_name: str | None = None
    dataset_config_name: str | None = None
    max_seq_length: int = 128
    vocab_size: int = 8000
    steps: int | None = None
    tokens: int | None = None
    batch_size: int = 32
    learning_rate: float = 1e-3
    processes: int = 1
    config_overrides: str | None = None
    measure_every: int | None = None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.processes * self.max_seq_length

    @property
    def max_steps(self) -> int:
        """The budget in optimiser steps (a token budget rounded up to whole steps)."""
        if self.steps is not None:
            return self.steps
        return math.ceil(self.tokens / self.tokens_per_step)


@dataclass
class RunSpec:
    """One run: a variant with its settings, trained once per seed. ``group`` is the spec entry it came from
    (the grid's name), ``grid`` its point in the grid."""

    name: str
    variant: str
    settings: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [42])
    group: str = ""
    grid: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskSpec:
    """A downstream task fine-tuned on every run (`hf_posenc.training.runner.finetune_tasks`)."""

    name: str
    learning_rates: list[float] = field(default_factory=lambda: [1e-4])
    seeds: list[int] = field(default_factory=lambda: [42])
    max_train_samples: int | None = 2000
    max_eval_samples: int | None = 1000
    max_steps: int = -1
    num_train_epochs: float = 1.0
    batch_size: int = 32
    max_seq_length: int = 128


@dataclass
class ProbeSpec:
    """The word-order probes on SNLI (`hf_posenc.tasks.word_order.run_probe`)."""

    max_train_samples: int | None = 2000
    max_eval_samples: int | None = 500
    max_steps: int = -1
    num_train_epochs: float = 1.0
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_seq_length: int = 128
    seed: int = 42
    metric_sentences: int = 64
    train_file: str | None = None  # your own snli_1.0_train.jsonl (default: the built-in SNLI)
    test_file: str | None = None


@dataclass
class ExtrapolationSpec:
    """Masked-LM loss at several lengths on held-out text (`hf_posenc.analysis.extrapolation.extrapolate`)."""

    lengths: list[int] = field(default_factory=lambda: [128, 256, 512])
    max_tokens: int = 50_000
    texts: str | None = None


@dataclass
class PositionSpec:
    """Locality and symmetry of the position-only attention matrices (where the variant has them)."""

    seq_len: int = 64


@dataclass
class ReportSpec:
    """How the report computes its statistics."""

    significance: float = 0.05
    bootstrap: int = 1000
    seed: int = 0


@dataclass
class StudySpec:
    name: str
    output: str | None
    pretraining: PretrainingSpec
    runs: list[RunSpec]
    tasks: list[TaskSpec] = field(default_factory=list)
    probes: ProbeSpec | None = None
    extrapolation: ExtrapolationSpec | None = None
    position_attention: PositionSpec | None = None
    report: ReportSpec = field(default_factory=ReportSpec)
    random_init: Any = None  # hf_posenc.study.baselines.RandomInitSpec: set by parse_spec when there are tasks

    def run(self, name: str) -> RunSpec:
        return next(run for run in self.runs if run.name == name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self, part: Any) -> str:
        return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------- reading
def load_spec(path: str | Path) -> StudySpec:
    """Read and check the spec file at `path` (YAML, or JSON when it ends in .json)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"study spec {path} does not exist; give the path of a YAML or JSON spec.") from None
    except IsADirectoryError:
        raise ValueError(f"study spec {path} is a folder; give the path of a YAML or JSON spec file.") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path} is not UTF-8 text; a study spec is a YAML or JSON file.") from None
    return spec_from_text(text, str(path), json_format=path.suffix.lower() == ".json")


def spec_from_text(text: str, source: str = "spec", json_format: bool = False) -> StudySpec:
    values, lines = read_document(text, source, json_format)
    return parse_spec(values, source, lines)


# ---------------------------------------------------------------------------------------------------- checking
_TOP_KEYS = ("name", "output", "seeds", "encoding_modules", "pretraining", "runs", "evaluations", "report")
_EVALUATION_KEYS = ("tasks", "probes", "extrapolation", "position_attention", "random_init")


def parse_spec(values: Any, source: str = "spec", lines: dict[tuple, int] | None = None) -> StudySpec:
    """Check a spec read from YAML/JSON and expand its grids; a `SpecError` names the line of any mistake."""
    where = Where(source, lines or {})
    mapping = _mapping(values, (), where, "the spec")
    _known_keys(mapping, _TOP_KEYS, (), where, "the spec")
    _import_encoding_modules(mapping.get("encoding_modules"), where)
    if "runs" not in mapping:
        raise where.error((), "the spec has no 'runs'; list at least one run (e.g. '- variant: rope').")
    if "pretraining" not in mapping:
        raise where.error((), "the spec has no 'pretraining' section; it needs at least a budget (steps: N).")
    name = mapping.get("name", "study")
    if not isinstance(name, str) or not name.strip():
        raise where.error(("name",), f"name must be a non-empty string; got {name!r}.")
    if not _is_plain_folder_name(name):  # the default output folder is outputs/study-<name>
        raise where.error(("name",), f"the study name {name!r} {_FOLDER_NAME_RULE}")
    output = mapping.get("output")
    if output is not None and not isinstance(output, str):
        raise where.error(("output",), f"output must be a folder path; got {output!r}.")
    seeds = _seeds(mapping.get("seeds", [42]), ("seeds",), where)
    pretraining = _dataclass(PretrainingSpec, mapping["pretraining"], ("pretraining",), where)
    _check_pretraining(pretraining, where)
    runs = _runs(mapping["runs"], seeds, pretraining, where)
    evaluations = _mapping(mapping.get("evaluations", {}) or {}, ("evaluations",), where, "evaluations")
    _known_keys(evaluations, _EVALUATION_KEYS, ("evaluations",), where, "evaluations")
    tasks = _tasks(evaluations.get("tasks", []) or [], where)
    probes = _optional(ProbeSpec, evaluations, "probes", where)
    extrapolation = _optional(ExtrapolationSpec, evaluations, "extrapolation", where)
    position = _optional(PositionSpec, evaluations, "position_attention", where)
    report = _dataclass(ReportSpec, mapping.get("report", {}) or {}, ("report",), where)
    if not 0 < report.significance < 1:
        raise where.error(("report", "significance"), f"significance must be in (0, 1); got {report.significance}.")
    if report.bootstrap < 0:
        raise where.error(("report", "bootstrap"), "bootstrap is a number of resamples, 0 (none) or more.")
    if extrapolation is not None:
        if not extrapolation.lengths or any(length < 3 for length in extrapolation.lengths):
            raise where.error(
                ("evaluations", "extrapolation", "lengths"), "extrapolation lengths must be a list of lengths >= 3."
            )
    if position is not None and position.seq_len < 1:
        raise where.error(("evaluations", "position_attention", "seq_len"), "seq_len must be at least 1.")
    if probes is not None:
        _check_positive(probes, ("max_train_samples", "max_eval_samples"), ("evaluations", "probes"), where)
    return StudySpec(
        name=name,
        output=output,
        pretraining=pretraining,
        runs=runs,
        tasks=tasks,
        probes=probes,
        extrapolation=extrapolation,
        position_attention=position,
        report=report,
        random_init=_random_init(evaluations, tasks, runs, where),
    )


def _import_encoding_modules(value: Any, where: Where) -> None:
    """Your own encodings (hf_posenc.register_encoding): module names or .py paths relative to the spec's folder,
    imported before the runs are read; the runs' processes inherit them through HF_POSENC_ENCODINGS."""
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise where.error(
            ("encoding_modules",), f"encoding_modules must be a list of module names or .py paths; got {value!r}."
        )
    spec_folder = Path(where.source).parent if Path(where.source).is_file() else None
    try:
        hf_posenc.import_encoding_modules(value, relative_to=spec_folder)
    except (ValueError, FileNotFoundError) as error:
        raise where.error(("encoding_modules",), str(error)) from None


def _random_init(evaluations: dict, tasks: list, runs: list, where: Where):
    from .baselines import parse_random_init  # the baseline's own module owns its spec section

    return parse_random_init(evaluations, tasks, runs, where)


def _mapping(value: Any, path: tuple, where: Where, what: str) -> dict:
    if not isinstance(value, dict):
        raise where.error(path, f"{what} must be a mapping (key: value); got {type(value).__name__}.")
    return value


def _known_keys(mapping: dict, known, path: tuple, where: Where, what: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"the keys are: {', '.join(known)}."
            raise where.error(path + (key,), f"{what} has no key '{key}'; {hint}")


def _kind_ok(value: Any, annotation: str) -> bool:
    if value is None:
        return "None" in annotation
    if isinstance(value, bool):
        return annotation.startswith("bool")
    if annotation.startswith("int"):
        return isinstance(value, int)
    if annotation.startswith("float"):
        return isinstance(value, (int, float))
    if annotation.startswith("str"):
        return isinstance(value, str)
    if annotation.startswith("list[int]"):
        return isinstance(value, list) and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    if annotation.startswith("list[float]"):
        return isinstance(value, list) and all(
            isinstance(item, (int, float)) and not isinstance(item, bool) for item in value
        )
    if annotation.startswith("dict"):
        return isinstance(value, dict)
    return True


def _yaml_number(value: Any, annotation: str) -> Any:
    """YAML 1.1 reads 1e-4 (no dot) as a string: read it as the number the field expects."""
    if isinstance(value, list):
        return [_yaml_number(item, annotation.replace("list[", "", 1)) for item in value]
    if isinstance(value, str) and annotation.startswith(("float", "list[float")):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _dataclass(cls, value: Any, path: tuple, where: Where, **fixed):
    mapping = _mapping(value, path, where, path[-1] if path else "the spec")
    known = {item.name: item for item in dataclasses.fields(cls) if item.name not in fixed}
    _known_keys(mapping, list(known), path, where, path[-1] if path else "the spec")
    mapping = {key: _yaml_number(item_value, str(known[key].type)) for key, item_value in mapping.items()}
    for key, item_value in mapping.items():
        annotation = str(known[key].type)
        if not _kind_ok(item_value, annotation):
            raise where.error(path + (key,), f"{key} must be {annotation}; got {item_value!r}.")
    return cls(**fixed, **mapping)


def _optional(cls, evaluations: dict, key: str, where: Where):
    if key not in evaluations or evaluations[key] is False:
        return None
    value = evaluations[key]
    return _dataclass(cls, {} if value in (None, True) else value, ("evaluations", key), where)


def _check_positive(spec, names, path, where) -> None:
    for name in names:
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise where.error(path + (name,), f"{name} must be at least 1 (or left out); got {value}.")


def _seeds(value: Any, path: tuple, where: Where) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in value)
    ):
        raise where.error(path, f"seeds must be a non-empty list of integers; got {value!r}.")
    if len(set(value)) != len(value):
        raise where.error(path, f"seeds {value} repeat a seed; list each seed once.")
    return list(value)


def _check_pretraining(spec: PretrainingSpec, where: Where) -> None:
    from .. import data
    from ..training.arguments import SIZE_PRESETS

    path = ("pretraining",)
    if spec.size not in SIZE_PRESETS:
        raise where.error(path + ("size",), f"unknown size {spec.size!r}; choose one of {', '.join(SIZE_PRESETS)}.")
    if spec.train_file is None and spec.dataset_name is None and spec.corpus not in data.CORPORA:
        raise where.error(
            path + ("corpus",), f"unknown corpus {spec.corpus!r}; choose one of {', '.join(data.CORPORA)}."
        )
    if (spec.steps is None) == (spec.tokens is None):
        raise where.error(path, "give the budget of every run as exactly one of 'steps: N' or 'tokens: N'.")
    budget_key = "steps" if spec.steps is not None else "tokens"
    if getattr(spec, budget_key) < 1:
        raise where.error(
            path + (budget_key,), f"the budget {budget_key}: {getattr(spec, budget_key)} trains nothing; give >= 1."
        )
    for name in ("max_seq_length", "vocab_size", "batch_size", "processes"):
        if getattr(spec, name) < 1:
            raise where.error(path + (name,), f"{name} must be at least 1; got {getattr(spec, name)}.")
    if spec.max_seq_length < 3:
        raise where.error(path + ("max_seq_length",), "max_seq_length must leave room for [CLS], a token and [SEP].")
    if not 0 < spec.learning_rate < math.inf:
        raise where.error(
            path + ("learning_rate",), f"learning_rate must be a finite number above 0; got {spec.learning_rate}."
        )
    from transformers import TrainingArguments

    training_fields = {item.name for item in dataclasses.fields(TrainingArguments)}
    owned = {"max_steps", "per_device_train_batch_size", "learning_rate", "output_dir", "seed"}
    for key in spec.training:
        if key in SECRET_FIELDS or key.endswith("_token"):
            raise where.error(
                path + ("training", key),
                f"training.{key} is a secret, and the spec is written in clear into study_spec.json; drop it and log "
                "in with `hf auth login` (or set HF_TOKEN) instead.",
            )
        if key in owned:
            raise where.error(
                path + ("training", key), f"training.{key} is set by the study (budget, batch_size, seeds); drop it."
            )
        if key not in training_fields:
            close = difflib.get_close_matches(key, training_fields, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see transformers.TrainingArguments."
            raise where.error(path + ("training", key), f"'{key}' is not a TrainingArguments field; {hint}")
    if spec.config_overrides:
        from ..training.model_config import parse_config_overrides

        try:
            parse_config_overrides("nope", spec.config_overrides)
        except ValueError as error:
            raise where.error(path + ("config_overrides",), str(error)) from None


def _accepted_settings(variant: str) -> set[str]:
    """Fields a run of `variant` may set: the variant config's own and the shared base fields."""
    return set(hf_posenc.create_config(variant).to_dict()) - _NOT_RUN_SETTINGS


def _owners(setting: str) -> list[str]:
    return [variant for variant in hf_posenc.VARIANTS if setting in _accepted_settings(variant)]


def _check_setting(variant: str, setting: str, path: tuple, where: Where, as_grid: bool) -> None:
    if setting in _accepted_settings(variant):
        return
    owners = _owners(setting)
    what = "a grid over" if as_grid else "the setting"
    if owners:
        raise where.error(
            path,
            f"{what} '{setting}' belongs to the {', '.join(owners)} variant(s), not to '{variant}'; "
            f"move it to a run of {owners[0]} or drop it.",
        )
    everything = sorted(set().union(*(_accepted_settings(name) for name in hf_posenc.VARIANTS)))
    close = difflib.get_close_matches(setting, everything, n=1)
    if close and close[0] in _accepted_settings(variant):
        hint = f"did you mean '{close[0]}'?"
    elif close:
        hint = f"did you mean '{close[0]}' (a parameter of {', '.join(_owners(close[0]))})?"
    else:
        hint = "see the variant's config for its parameters."
    raise where.error(path, f"{what} '{setting}': the '{variant}' variant has no such parameter; {hint}")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "_".join(_format_value(item) for item in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


# Run names become folder names (<output>/runs/<name>/seed-<n>): letters, digits and these, nothing that a path
# could read as a separator, a parent folder or a hidden file.
_FOLDER_NAME_PUNCTUATION = set("._+=,@-_")
_MAX_FOLDER_NAME = 120
_FOLDER_NAME_RULE = (
    f"is not a plain folder name: use letters, digits and {' '.join(sorted(_FOLDER_NAME_PUNCTUATION))} only, at "
    f"most {_MAX_FOLDER_NAME} characters, not starting with a dot (no slashes, spaces or '..')."
)


def _is_plain_folder_name(name: str) -> bool:
    return (
        0 < len(name) <= _MAX_FOLDER_NAME
        and not name.startswith(".")
        and ".." not in name
        and all(char.isalnum() or char in _FOLDER_NAME_PUNCTUATION for char in name)
    )


def _safe_name(name: Any, path: tuple, where: Where) -> str:
    if not isinstance(name, str) or not _is_plain_folder_name(name):
        raise where.error(path, f"run name {name!r} {_FOLDER_NAME_RULE}")
    return name


_RUN_KEYS = ("name", "variant", "settings", "grid", "seeds")


# TrainingArguments fields that hold credentials (besides any field whose name ends in _token).
SECRET_FIELDS = {"hub_token", "push_to_hub_token"}


def _runs(value: Any, default_seeds: list[int], pretraining: PretrainingSpec, where: Where) -> list[RunSpec]:
    if not isinstance(value, list) or not value:
        raise where.error(("runs",), "runs must be a non-empty list of runs (each '- variant: NAME').")
    runs: list[RunSpec] = []
    first_line: dict[str, int] = {}
    for index, entry in enumerate(value):
        path = ("runs", index)
        entry = _mapping(entry, path, where, f"run {index + 1}")
        _known_keys(entry, _RUN_KEYS, path, where, f"run {index + 1}")
        variant = entry.get("variant")
        if variant not in hf_posenc.VARIANTS:
            close = difflib.get_close_matches(str(variant), hf_posenc.VARIANTS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise where.error(
                path + ("variant",),
                f"unknown variant {variant!r}{hint}; the variants are {', '.join(hf_posenc.VARIANTS)}.",
            )
        group = _safe_name(entry.get("name", variant), path + ("name",), where)
        settings = _mapping(entry.get("settings", {}) or {}, path + ("settings",), where, "settings")
        for key in settings:
            _check_setting(variant, key, path + ("settings", key), where, as_grid=False)
        grid = _mapping(entry.get("grid", {}) or {}, path + ("grid",), where, "grid")
        for key, options in grid.items():
            _check_setting(variant, key, path + ("grid", key), where, as_grid=True)
            if not isinstance(options, list) or not options:
                raise where.error(path + ("grid", key), f"grid '{key}' must be a non-empty list of values.")
            if key in settings:
                raise where.error(path + ("grid", key), f"'{key}' is both a setting and a grid; keep one.")
        seeds = _seeds(entry["seeds"], path + ("seeds",), where) if "seeds" in entry else list(default_seeds)
        points = [dict(zip(grid, combination)) for combination in itertools.product(*grid.values())] or [{}]
        for point in points:
            suffix = "".join(f"-{GRID_ALIASES.get(key, key)}{_format_value(item)}" for key, item in point.items())
            name = group + suffix
            if not _is_plain_folder_name(name):
                culprit = next(
                    (key for key, item in point.items() if not _is_plain_folder_name(f"x{_format_value(item)}")),
                    next(iter(point), "name"),
                )
                raise where.error(
                    path + ("grid", culprit) if point else path,
                    f"the grid value {point.get(culprit)!r} of '{culprit}' makes the run name {name!r}, which "
                    f"{_FOLDER_NAME_RULE} Change the value, or give the run a shorter 'name:'.",
                )
            if name in first_line:
                raise where.error(
                    path,
                    f"two runs are named '{name}' (the first on line {first_line[name]}); give each run its own "
                    "'name:'.",
                )
            first_line[name] = where.lines.get(path, 0)
            run_settings = {**settings, **point}
            _check_config(variant, run_settings, pretraining, path, where)
            runs.append(
                RunSpec(name=name, variant=variant, settings=run_settings, seeds=seeds, group=group, grid=point)
            )
    return runs


def _check_config(variant: str, settings: dict, pretraining: PretrainingSpec, path: tuple, where: Where) -> None:
    """Build the run's config now, so that a bad value (a negative w, a head count that does not divide) fails
    before anything trains."""
    from ..training.arguments import SIZE_PRESETS
    from ..training.model_config import parse_config_overrides

    try:
        overrides = parse_config_overrides(variant, pretraining.config_overrides)
        hf_posenc.create_config(
            variant, **{**SIZE_PRESETS.get(pretraining.size, {}), **overrides, **settings, "vocab_size": 1000}
        )
    except (ValueError, TypeError) as error:
        raise where.error(path, f"the {variant} run's settings {settings} make no valid model: {error}") from None


def _tasks(value: Any, where: Where) -> list[TaskSpec]:
    from ..tasks.registry import TASKS

    if not isinstance(value, list):
        raise where.error(("evaluations", "tasks"), "tasks must be a list (each '- name: TASK' or just 'TASK').")
    tasks = []
    for index, entry in enumerate(value):
        path = ("evaluations", "tasks", index)
        if isinstance(entry, str):
            entry = {"name": entry}
        entry = _mapping(entry, path, where, f"task {index + 1}")
        name = entry.get("name")
        if name not in TASKS:
            close = difflib.get_close_matches(str(name), TASKS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise where.error(path, f"unknown task {name!r}{hint}; the tasks are {', '.join(TASKS)}.")
        if any(task.name == name for task in tasks):
            raise where.error(path, f"task '{name}' is listed twice; list it once.")
        task = _dataclass(TaskSpec, entry, path, where)
        task.seeds = _seeds(task.seeds, path + ("seeds",), where)
        if not task.learning_rates or any(not 0 < rate < math.inf for rate in task.learning_rates):
            raise where.error(path + ("learning_rates",), "learning_rates must be one or more finite numbers above 0.")
        if task.max_steps == 0:
            raise where.error(path + ("max_steps",), "max_steps: 0 fine-tunes nothing; give >= 1, or -1 for epochs.")
        _check_positive(task, ("max_train_samples", "max_eval_samples"), path, where)
        tasks.append(task)
    return tasks

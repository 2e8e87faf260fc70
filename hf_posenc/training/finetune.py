"""Fine-tuning an encoder as a sequence classifier on a downstream task, and predicting with it.

- `load_sequence_classifier(folder, task)`: any local model folder (an hf_posenc variant or a stock BERT-family
  model) with a classification head for the task's labels. hf_posenc's variants are registered with the Auto
  classes when hf_posenc is imported, so they load without remote code; a folder that asks to run its own code
  is refused unless ``trust_remote_code=True``.
- `finetune(model, tokenizer, examples, task=..., output_dir=..., learning_rate=..., ...)`: `transformers.Trainer`
  with dynamic padding (each batch padded to its longest example); returns the Trainer.
- `predict(trainer, examples, task)`: the predicted class index of each example.

Heavy imports (Trainer, datasets) happen inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
import types
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..storage import require_model_folder
from ..tasks.base import Task, TaskKind
from ..tasks.snli import SNLI

__all__ = [
    "IGNORED_LABEL",
    "FinetuneArguments",
    "build_trainer",
    "encode_examples",
    "finetune",
    "load_classifier",
    "load_sequence_classifier",
    "load_token_classifier",
    "load_tokenizer",
    "output_to_label_map",
    "predict",
    "references",
    "require_trusted_code",
    "token_labels",
    "usable_max_length",
]

# The fine-tuning learning rate when none is given, by the encoder's width (config.hidden_size): BERT-base's usual
# 2e-5..5e-5 starves the tiny models hf_posenc pretrains by default (a 128-wide model stays at the majority class),
# and small BERTs are fine-tuned with larger rates (Turc et al. 2019 search 3e-5..3e-4). See docs/evaluation.md.
LEARNING_RATE_BY_WIDTH = ((256, 3e-4), (512, 1e-4))
WIDE_MODEL_LEARNING_RATE = 3e-5
# Epochs when none are given: measured on a 128-wide rope pretrained 500 steps, sentiment with 2,000 examples stays
# at the majority class after 1 epoch at every rate from 3e-5 to 1e-3 and leaves it after 5 at 3e-4 (docs/evaluation.md).
EPOCHS_BY_WIDTH = ((256, 5.0),)
WIDE_MODEL_EPOCHS = 1.0


def _by_width(config, table, wide):
    width = getattr(config, "hidden_size", None)
    if not isinstance(width, int):
        return wide
    return next((value for limit, value in table if width <= limit), wide)


def default_learning_rate(config) -> float:
    """The learning rate for fine-tuning a model of this config when the user names none (`LEARNING_RATE_BY_WIDTH`)."""
    return _by_width(config, LEARNING_RATE_BY_WIDTH, WIDE_MODEL_LEARNING_RATE)


def default_epochs(config) -> float:
    """The epochs of fine-tuning a model of this config when the user names none (`EPOCHS_BY_WIDTH`)."""
    return _by_width(config, EPOCHS_BY_WIDTH, WIDE_MODEL_EPOCHS)


def saved_config(model_dir: str | Path) -> types.SimpleNamespace | None:
    """The fields of the config.json in ``model_dir`` as attributes (None when it cannot be read), enough for the
    defaults by width without loading the model."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return types.SimpleNamespace(**config) if isinstance(config, dict) else None


# TrainingArguments fields that fine-tuning decides for each run: the output folder is the run's working folder,
# the learning rate and seed come from the grid (--learning_rates, --seeds).
RUN_OWNED_OPTIONS = frozenset({"output_dir", "learning_rate", "seed"})
# Names of the weights a classification head adds on top of a pretrained encoder.
NEW_HEAD_PARTS = ("classifier", "pooler", "score")
# The message transformers gives when a folder's code would have to run (it names the Python argument).
_REMOTE_CODE_HINT = "trust_remote_code"
# The label of sub-tokens that are not scored (special tokens, the second and later pieces of a word): the loss and
# the metrics skip it, as in transformers' token-classification examples.
IGNORED_LABEL = -100


@dataclass
class FinetuneArguments:
    """How to fine-tune: the options users of transformers' ``run_glue.py`` expect.

    ``max_steps`` > 0 overrides ``num_train_epochs``; ``warmup_ratio`` is the share of the steps spent warming the
    learning rate up from 0; ``max_seq_length`` truncates each example (batches are padded to their longest
    example, not to this length).
    """

    learning_rate: float | None = None  # None: `default_learning_rate` of the model being fine-tuned
    num_train_epochs: float | None = None  # None: `default_epochs` of the model being fine-tuned
    max_steps: int = -1
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 128
    max_seq_length: int = 128
    seed: int = 42
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    logging_steps: int = 50
    # Any other TrainingArguments fields ({"bf16": True, "report_to": ["tensorboard"], ...}): the flags the CLI
    # reads with pretraining's HfArgumentParser. They are applied last, so they win over the defaults below.
    trainer_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.learning_rate is not None and not 0 < self.learning_rate < float("inf"):
            problems.append(f"learning_rate must be a finite number above 0 (got {self.learning_rate})")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append(
                f"max_steps must be a positive number of steps, or -1 to train by epochs (got {self.max_steps})"
            )
        if self.max_steps == -1 and self.num_train_epochs is not None and not self.num_train_epochs > 0:
            problems.append(f"num_train_epochs must be above 0 when max_steps is not set (got {self.num_train_epochs})")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.max_seq_length < 2:
            problems.append(
                f"max_seq_length must leave room for [CLS] and [SEP]: at least 2 (got {self.max_seq_length})"
            )
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio is a share of the training steps, in [0, 1) (got {self.warmup_ratio})")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be 0 or above (got {self.weight_decay})")
        owned = sorted(
            set(self.trainer_options) & (RUN_OWNED_OPTIONS | {item.name for item in dataclasses.fields(self)})
        )
        if owned:
            problems.append(f"trainer_options cannot set {', '.join(owned)}: these are fine-tuning's own settings")
        if problems:
            raise ValueError("; ".join(problems) + ".")

    def training_arguments(self, output_dir: str | Path):
        """The `transformers.TrainingArguments` of a run that saves no checkpoints, shows a progress bar and, unless
        ``trainer_options`` say otherwise (``report_to``), reports nowhere."""
        import torch
        from transformers import TrainingArguments

        defaults = dict(
            save_strategy="no",
            report_to="none",
            logging_steps=self.logging_steps,
            dataloader_pin_memory=torch.cuda.is_available(),
        )
        return TrainingArguments(
            output_dir=str(output_dir),
            num_train_epochs=self.num_train_epochs,
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            per_device_train_batch_size=self.per_device_train_batch_size,
            per_device_eval_batch_size=self.per_device_eval_batch_size,
            warmup_steps=self.warmup_ratio,  # a float in [0, 1) is a share of the steps in transformers 5
            weight_decay=self.weight_decay,
            seed=self.seed,
            **{**defaults, **self.trainer_options},
        )


def require_trusted_code(folder: str | Path, trust_remote_code: bool, flag: str = "--trust_remote_code") -> None:
    """Refuse, before transformers is asked, a model folder whose loading would run Python files it ships.

    That is a folder whose config.json has an ``auto_map`` and a ``model_type`` that transformers does not know
    (hf_posenc's variants are known once hf_posenc is imported, so their ``auto_map`` is not needed).
    """
    if trust_remote_code:
        return
    from transformers import CONFIG_MAPPING  # holds hf_posenc's types: importing the package registered them

    config_path = Path(folder) / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return  # not readable here: the loader reports what is wrong with it
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if not auto_map or config.get("model_type") in CONFIG_MAPPING:
        return
    code_files = sorted({str(reference).split("--")[-1].split(".")[0] + ".py" for reference in _flatten(auto_map)})
    raise ValueError(
        f"{folder} loads through its own code ({', '.join(code_files)}; model_type "
        f"{config.get('model_type')!r} is not one transformers or hf_posenc knows). Read that code, and pass "
        f"{flag} (trust_remote_code=True) only if you trust it."
    )


def _flatten(auto_map: object) -> list[str]:
    """The class references of an ``auto_map`` (a value may be a list, e.g. slow and fast tokenizer classes)."""
    values = auto_map.values() if isinstance(auto_map, dict) else [auto_map]
    found: list[str] = []
    for value in values:
        found.extend(item for item in (value if isinstance(value, (list, tuple)) else [value]) if item)
    return found


def _untrusted_code_error(folder: Path, error: Exception) -> ValueError | None:
    if _REMOTE_CODE_HINT in str(error):
        return ValueError(
            f"{folder} loads through its own code; read it, and pass --trust_remote_code "
            "(trust_remote_code=True) only if you trust it."
        )
    return None


def load_sequence_classifier(
    model_dir: str | Path, task: Task = SNLI, *, keep_head: bool = False, trust_remote_code: bool = False
):
    """Load the model in ``model_dir`` as a sequence classifier over ``task``'s labels (SNLI's by default).

    Works for a saved hf_posenc variant and for any local Hugging Face model whose type has a
    ``...ForSequenceClassification`` class (a stock ``BertModel`` folder gets a fresh classification head). With
    ``keep_head=True`` the folder must already be a classifier for the task (its labels are kept; see
    `output_to_label_map`). Code shipped in the folder runs only with ``trust_remote_code=True``.

    Raises FileNotFoundError for a missing folder or config.json, and ValueError naming the folder when the model
    cannot be made a sequence classifier or would need to run its own code.
    """
    from transformers import AutoModelForSequenceClassification

    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        raise ValueError(f"task {task.name} labels tokens; load a token classifier for it, not a sequence classifier.")
    return _load_head(model_dir, task, AutoModelForSequenceClassification, "sequence", keep_head, trust_remote_code)


def load_token_classifier(
    model_dir: str | Path, task: Task, *, keep_head: bool = False, trust_remote_code: bool = False
):
    """Load the model in ``model_dir`` as a token classifier over ``task``'s labels (``AutoModelForTokenClassification``:
    every hf_posenc variant has one; a stock BERT folder gets a fresh head). Errors as `load_sequence_classifier`."""
    from transformers import AutoModelForTokenClassification

    if task.kind is not TaskKind.TOKEN_CLASSIFICATION:
        raise ValueError(f"task {task.name} labels whole examples; load a sequence classifier for it.")
    return _load_head(model_dir, task, AutoModelForTokenClassification, "token", keep_head, trust_remote_code)


def load_classifier(model_dir: str | Path, task: Task, *, keep_head: bool = False, trust_remote_code: bool = False):
    """The model in ``model_dir`` with the head ``task``'s kind needs: a token classifier for token classification,
    else a sequence classifier (one output for regression)."""
    loader = load_token_classifier if task.kind is TaskKind.TOKEN_CLASSIFICATION else load_sequence_classifier
    return loader(model_dir, task, keep_head=keep_head, trust_remote_code=trust_remote_code)


def _load_head(model_dir, task: Task, auto_class, head: str, keep_head: bool, trust_remote_code: bool):
    from transformers import AutoConfig

    model_dir = require_model_folder(model_dir)
    require_trusted_code(model_dir, trust_remote_code)
    try:
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, OSError) as error:
        raise _untrusted_code_error(model_dir, error) or ValueError(
            f"cannot read the model config in {model_dir}: {error}"
        ) from error
    if getattr(config, "is_encoder_decoder", False) and head == "sequence":
        # transformers gives T5 or BART a classification head fed by a decoder; it trains on decoder inputs shifted
        # from the text, which fails deep inside training or, where it runs, is not the encoder these tasks measure.
        raise ValueError(
            f"the model in {model_dir} (model_type {config.model_type!r}) is an encoder-decoder model; fine-tuning "
            "and probing take an encoder (BERT, RoBERTa, ... or an hf_posenc variant). Pass such a model's folder."
        )
    if keep_head:
        _check_kept_head(model_dir, config, task)
    else:
        config.num_labels = task.num_labels
        if task.label_names:
            config.id2label = dict(enumerate(task.label_names))
            config.label2id = {label: index for index, label in enumerate(task.label_names)}
        if task.kind is not TaskKind.TOKEN_CLASSIFICATION:
            config.problem_type = "regression" if task.kind is TaskKind.REGRESSION else "single_label_classification"
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # transformers' load-report table, on every load; what matters is said below
    try:
        model, loading = auto_class.from_pretrained(
            model_dir,
            config=config,
            trust_remote_code=trust_remote_code,
            ignore_mismatched_sizes=not keep_head,
            output_loading_info=True,
        )
    except (ValueError, KeyError) as error:
        reason = (str(error).splitlines() or [repr(error)])[0]  # transformers appends every known config class
        class_name = "ForSequenceClassification" if head == "sequence" else "ForTokenClassification"
        raise ValueError(
            f"the model in {model_dir} (model_type {getattr(config, 'model_type', '?')!r}) is not a {head} "
            f"classifier and cannot be made one: transformers has no ...{class_name} class for it "
            f"({reason}). Use an encoder such as BERT or an hf_posenc variant."
        ) from error
    finally:
        logging.set_verbosity(verbosity)
    # A new head (and BERT's pooler) starts at random by design; any other missing weight means the folder is not
    # the pretrained encoder it seems to be.
    untrained = [
        name for name in loading["missing_keys"] if keep_head or not any(part in name for part in NEW_HEAD_PARTS)
    ]
    if untrained:
        warnings.warn(
            f"{model_dir} lacks {len(untrained)} weight(s) the {head} classifier needs, started at random: "
            f"{', '.join(sorted(untrained)[:5])}{' ...' if len(untrained) > 5 else ''}",
            stacklevel=3,
        )
    return model


def _check_kept_head(model_dir: Path, config, task: Task) -> None:
    """A head kept as it is must have one output per label of the task (one for regression)."""
    outputs = getattr(config, "num_labels", None)
    if outputs != task.num_labels:
        what = (
            "a regression task needs 1 output (a score)"
            if task.kind is TaskKind.REGRESSION
            else (f"{task.name} has {task.num_labels} labels")
        )
        raise ValueError(
            f"the classifier in {model_dir} has {outputs} outputs but {what}; fine-tune a fresh head instead of "
            "keeping this one (drop --skip_training / keep_head)."
        )


def load_tokenizer(folder: str | Path, *, trust_remote_code: bool = False, flag: str = "--tokenizer"):
    """The tokenizer saved in ``folder``; a clear error when there is none or it would run the folder's code."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"tokenizer folder {folder} does not exist; pass {flag} FOLDER holding a tokenizer.")
    require_trusted_code(folder, trust_remote_code)
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise _untrusted_code_error(folder, error) or ValueError(
            f"no usable tokenizer in {folder} ({str(error).splitlines()[0] if str(error) else repr(error)}); "
            f"pass {flag} FOLDER holding a tokenizer saved by save_pretrained."
        ) from error


def output_to_label_map(model, task: Task = SNLI) -> list[int]:
    """For each output of a kept classification head, the index of its label in ``task.label_names``."""
    names = {int(index): str(label).lower() for index, label in model.config.id2label.items()}
    if sorted(names.values()) != sorted(task.label_names):
        raise ValueError(
            f"the classifier's labels {sorted(names.values())} are not {task.name}'s {list(task.label_names)}; "
            "fine-tune it first (drop --skip_training)"
        )
    return [task.label_names.index(names[index]) for index in range(len(names))]


def usable_max_length(model, tokenizer, requested: int) -> int:
    """``requested`` capped by the positions the model has and the length its tokenizer declares."""
    limits = [requested]
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 1_000_000:  # "no limit" is stored as a huge number
        limits.append(declared)
    return min(limits)


def encode_examples(tokenizer, examples: Sequence[dict], task: Task, max_length: int, with_labels: bool):
    """A `datasets.Dataset` of the tokenized examples (truncated to ``max_length``, not padded: the collator pads
    each batch), with ``labels`` when ``with_labels``."""
    import datasets

    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        encoded = _encode_words(tokenizer, examples, task, max_length)
    else:
        encoded = tokenizer(*task.texts(examples), truncation=True, max_length=max_length)
    columns = {key: list(values) for key, values in encoded.items()}
    if with_labels:
        if task.kind is TaskKind.TOKEN_CLASSIFICATION:
            columns["labels"] = [
                token_labels(encoded.word_ids(index), task.label_ids(example)) for index, example in enumerate(examples)
            ]
        else:
            columns["labels"] = references(examples, task)
    return datasets.Dataset.from_dict(columns)


def _encode_words(tokenizer, examples: Sequence[dict], task: Task, max_length: int):
    """Tokenize examples already split into words (token classification), keeping which word each token is from."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"task {task.name} labels words, which needs a fast tokenizer (it maps sub-tokens to words); "
            f"{type(tokenizer).__name__} is not one. Save the tokenizer with tokenizers' fast class."
        )
    [words] = task.texts(examples)
    return tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)


def token_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """One label per token: a word's label on its first sub-token, `IGNORED_LABEL` on its other sub-tokens and on
    special tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORED_LABEL if word is None or word == previous else word_labels[word])
        previous = word
    return labels


def references(examples: Sequence[dict], task: Task) -> list:
    """The gold answer of each example as the metric takes it: a class index, a float for regression, or a list of
    class indices (one per word) for token classification."""
    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        return [task.label_ids(example) for example in examples]
    if task.kind is TaskKind.REGRESSION:
        return [float(example[task.label_column]) for example in examples]
    return [task.label_id(example) for example in examples]


def build_trainer(
    model, tokenizer, arguments: FinetuneArguments, output_dir: str | Path, train_dataset=None, task: Task = SNLI
):
    """A `transformers.Trainer` that pads each batch to its longest example (the labels too, with `IGNORED_LABEL`,
    for token classification)."""
    from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding, Trainer

    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        collator = DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORED_LABEL)
    else:
        collator = DataCollatorWithPadding(tokenizer)
    if arguments.learning_rate is None:
        arguments = dataclasses.replace(arguments, learning_rate=default_learning_rate(model.config))
    if arguments.num_train_epochs is None:
        arguments = dataclasses.replace(arguments, num_train_epochs=default_epochs(model.config))
    return Trainer(
        model=model,
        args=arguments.training_arguments(output_dir),
        train_dataset=train_dataset,
        data_collator=collator,
        processing_class=tokenizer,
    )


def finetune(
    model,
    tokenizer,
    examples: Sequence[dict],
    *,
    output_dir: str | Path,
    task: Task = SNLI,
    arguments: FinetuneArguments | None = None,
    **settings,
):
    """Fine-tune ``model`` on ``examples`` of ``task`` and return the `transformers.Trainer` (``trainer.model`` is
    the fine-tuned model; nothing is saved).

    Settings come from ``arguments`` and/or keyword arguments of `FinetuneArguments` (keywords win), e.g.
    ``finetune(model, tokenizer, pairs, output_dir="out", learning_rate=5e-4, max_steps=100)``. ``output_dir``
    is the Trainer's working folder. The seed is set before training, so the same inputs train the same model.
    """
    from transformers import set_seed

    unknown = sorted(set(settings) - {item.name for item in dataclasses.fields(FinetuneArguments)})
    if unknown:
        raise TypeError(f"finetune() got unknown setting(s) {', '.join(unknown)}; see FinetuneArguments.")
    arguments = dataclasses.replace(arguments or FinetuneArguments(), **settings)
    if not examples:
        raise ValueError(f"no {task.name} example to fine-tune on; give at least one training example.")
    set_seed(arguments.seed)
    max_length = usable_max_length(model, tokenizer, arguments.max_seq_length)
    train_dataset = encode_examples(tokenizer, examples, task, max_length, with_labels=True)
    trainer = build_trainer(model, tokenizer, arguments, output_dir, train_dataset=train_dataset, task=task)
    trainer.train()
    return trainer


def predict(
    trainer,
    examples: Sequence[dict],
    task: Task = SNLI,
    max_length: int = 128,
    output_to_label: list[int] | None = None,
) -> list:
    """The prediction for each example: a class index into ``task.label_names`` (through ``output_to_label`` for a
    head whose outputs are in another order), a number for a regression task, or for token classification a list
    with the class index of each word (read at its first sub-token; -1, never right, for a word cut off by
    ``max_length``)."""
    if not examples:
        return []
    tokenizer = trainer.processing_class
    max_length = usable_max_length(trainer.model, tokenizer, max_length)
    dataset = encode_examples(tokenizer, examples, task, max_length, with_labels=False)
    output = trainer.predict(dataset)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        encoded = _encode_words(tokenizer, examples, task, max_length)
        token_classes = logits.argmax(axis=-1)
        mapped = output_to_label or list(range(task.num_labels))
        predictions = []
        for index, example in enumerate(examples):
            by_word = [-1] * len(example[task.text_columns[0]])
            for position, word in enumerate(encoded.word_ids(index)):
                if word is not None and by_word[word] == -1:
                    by_word[word] = mapped[int(token_classes[index, position])]
            predictions.append(by_word)
        return predictions
    if task.kind is TaskKind.REGRESSION:
        return [float(value) for value in logits.reshape(len(examples), -1)[:, 0]]
    indices = [int(index) for index in logits.argmax(axis=-1)]
    return [output_to_label[index] for index in indices] if output_to_label is not None else indices

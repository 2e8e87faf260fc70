"""What can be wrong with a pretraining run, found before anything is downloaded or trained.

`check_arguments` runs first (no data needed): names, numbers, files, the output folder, the model config.
`check_data` runs once the corpus is packed, before the first step: enough blocks for one batch, and a masking
probability that leaves a masked token in every batch.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import hf_posenc

from .. import data
from .arguments import SIZE_PRESETS
from .model_config import build_config

# A run may expect this many batches without a masked token before it is refused (see check_masking).
_TOLERATED_UNMASKED_BATCHES = 0.01
_LISTED_FILES = 5


def check_arguments(model_args, variant_args, data_args, run_args, training_args) -> None:
    """Everything that can be wrong with the arguments, checked before any download or training."""
    if model_args.size is not None and model_args.size not in SIZE_PRESETS:
        raise ValueError(f"Unknown --size {model_args.size!r}; choose one of {', '.join(SIZE_PRESETS)}.")
    if data_args.corpus not in data.CORPORA:
        raise ValueError(f"Unknown --corpus {data_args.corpus!r}; choose one of {', '.join(data.CORPORA)}.")
    for flag in ("train_file", "validation_file"):
        _check_text_file(flag, getattr(data_args, flag))
    _check_validation_differs(data_args.train_file, data_args.validation_file)
    if data_args.tokenizer_name is not None and not Path(data_args.tokenizer_name).exists():
        raise FileNotFoundError(
            f"--tokenizer_name {data_args.tokenizer_name} is not a folder here; give a saved tokenizer folder."
        )
    _check_numbers(data_args, run_args)
    if not 0 < training_args.learning_rate < math.inf:
        raise ValueError(
            f"--learning_rate must be a finite number above 0; got {training_args.learning_rate} (BERT used 1e-4)."
        )
    _check_data_source(data_args, training_args)
    # The model's own checks (head sizes, w and s, ...) run now, with a stand-in vocabulary size.
    config = build_config(model_args, variant_args, data_args.vocab_size or 8000, pad_token_id=0)
    if (
        not hf_posenc.ENCODINGS[model_args.variant].extrapolates
        and data_args.max_seq_length > config.max_position_embeddings
    ):
        raise ValueError(
            f"--max_seq_length {data_args.max_seq_length} exceeds the {config.max_position_embeddings}-row position "
            f"table of '{model_args.variant}', which cannot extrapolate; lower --max_seq_length or raise "
            "max_position_embeddings with --config_overrides."
        )
    if data_args.document_aware_packing:
        problem = hf_posenc.ENCODINGS[model_args.variant](config).document_restart_problem()
        if problem is not None:
            raise ValueError(
                f"--document_aware_packing cannot be used with '{model_args.variant}': {problem}. Leave "
                "--document_aware_packing off for this variant."
            )
    if training_args.push_to_hub and not training_args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id USER/NAME (the repository to create or update).")
    check_output_dir(
        Path(training_args.output_dir),
        overwrite=run_args.overwrite_output_dir,
        resuming=bool(training_args.resume_from_checkpoint),
    )


def _check_text_file(flag: str, path: str | None) -> None:
    if path is None:
        return
    try:
        is_folder, is_file = Path(path).is_dir(), Path(path).is_file()
    except PermissionError:
        raise PermissionError(
            f"--{flag} {path} cannot be read by this user; fix its permissions or give a file you can read."
        ) from None
    if is_folder:
        raise ValueError(
            f"--{flag} {path} is a folder; give the path of a text file (one sentence per line, a blank line "
            "between documents)."
        )
    if not is_file:
        raise FileNotFoundError(f"--{flag} {path} does not exist; give the path of a text file.")


def _same_content(first: Path, second: Path) -> bool:
    if first.stat().st_size != second.stat().st_size:
        return False
    digests = []
    for path in (first, second):
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        digests.append(digest.digest())
    return digests[0] == digests[1]


def _check_validation_differs(train_file: str | None, validation_file: str | None) -> None:
    """Evaluating on the training text measures memory, not the model: its perplexity would look far too good."""
    if train_file is None or validation_file is None:
        return
    train, validation = Path(train_file), Path(validation_file)
    if train.resolve() == validation.resolve():
        what = "is the same file as"
    elif _same_content(train, validation):
        what = "holds the same text as"
    else:
        return
    raise ValueError(
        f"--validation_file {validation_file} {what} --train_file {train_file}, so the evaluation would score text "
        "the model trained on; give held-out text, or drop --validation_file to hold out --validation_fraction of "
        "the documents."
    )


def check_prepared_folder(data_args) -> None:
    """Without text named (--train_file, --dataset_name), --prepared_dataset names a corpus prepared earlier: a
    folder that is not there is a mistyped path, and preparing the built-in corpus in its place would train on
    text the user never chose."""
    if not data_args.prepared_dataset or data_args.train_file or data_args.dataset_name:
        return
    folder = Path(data_args.prepared_dataset).expanduser()
    if not folder.exists():
        raise FileNotFoundError(
            f"--prepared_dataset {data_args.prepared_dataset} does not exist. Without --train_file or --dataset_name "
            "it names a corpus prepared earlier: check the path. To prepare text into a new folder, name the text "
            f"(--train_file, --dataset_name), or create the folder first to prepare the built-in corpus "
            f"'{data_args.corpus}' in it."
        )


def _check_data_source(data_args, training_args) -> None:
    """--streaming and --prepared_dataset: what they need and what they exclude."""
    if data_args.streaming:
        if training_args.max_steps is None or training_args.max_steps <= 0:
            raise ValueError(
                "--streaming needs --max_steps: a stream has no length, so epochs cannot be counted; pass "
                "--max_steps N, or drop --streaming to prepare the corpus on disk."
            )
        if data_args.prepared_dataset:
            raise ValueError(
                "--streaming prepares nothing, so --prepared_dataset has no use with it; drop one of the two."
            )
    if data_args.prepared_dataset and Path(data_args.prepared_dataset).expanduser().exists():
        if not Path(data_args.prepared_dataset).expanduser().is_dir():
            raise FileExistsError(
                f"--prepared_dataset {data_args.prepared_dataset} is a file; give a folder (created if missing)."
            )
    if not data_args.streaming:
        check_prepared_folder(data_args)


def _check_numbers(data_args, run_args) -> None:
    if data_args.max_seq_length < 3:
        raise ValueError(
            f"--max_seq_length must be at least 3 ([CLS], a token, [SEP]); got {data_args.max_seq_length}."
        )
    if not 0 < data_args.mlm_probability < 1:
        raise ValueError(f"--mlm_probability must be between 0 and 1; got {data_args.mlm_probability}.")
    if data_args.validation_file is None and not 0 < data_args.validation_fraction < 1:
        raise ValueError(
            f"--validation_fraction must be between 0 and 1 (exclusive); got {data_args.validation_fraction}."
        )
    special_tokens = len(data.SPECIAL_TOKENS)
    if data_args.vocab_size is not None and data_args.tokenizer_name is None and data_args.vocab_size <= special_tokens:
        raise ValueError(
            f"--vocab_size must exceed the {special_tokens} special tokens; got {data_args.vocab_size} "
            "(8000 is the default)."
        )
    for flag in ("tokenizer_sample", "streaming_shuffle_buffer", "streaming_validation_documents"):
        if getattr(data_args, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1; got {getattr(data_args, flag)}.")
    if data_args.preprocessing_num_workers is not None and data_args.preprocessing_num_workers < 1:
        raise ValueError(
            f"--preprocessing_num_workers must be at least 1; got {data_args.preprocessing_num_workers} (leave it "
            "out to tokenize in one process, which uses all cores)."
        )
    for flag in ("posenc_every_n_steps", "posenc_heatmap_every", "posenc_probe_sequences"):
        value = getattr(run_args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} must be at least 1; got {value}.")


def check_output_dir(output_dir: Path, *, overwrite: bool, resuming: bool) -> None:
    """`output_dir` must be a folder (or not exist yet) this process can write to, and must not hold files a run
    would write over, unless `overwrite` or `resuming` says the user means it."""
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(
            f"--output_dir {output_dir} is a file, not a folder; give the path of a folder (it is created if missing)."
        )
    existing = output_dir if output_dir.exists() else next(parent for parent in output_dir.parents if parent.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(
            f"--output_dir {output_dir} cannot be written: {existing} is read-only for this user; choose a folder "
            f"you can write to, or change its permissions (chmod u+w {existing})."
        )
    if overwrite or resuming or not output_dir.exists():
        return
    entries = sorted(entry.name for entry in output_dir.iterdir())
    if not entries:
        return
    if (output_dir / "config.json").exists() or any(output_dir.glob("checkpoint-*")):
        what = "a trained model or checkpoints"
    else:
        shown = ", ".join(entries[:_LISTED_FILES])
        more = f" and {len(entries) - _LISTED_FILES} more" if len(entries) > _LISTED_FILES else ""
        what = f"files that pretraining could write over ({shown}{more})"
    raise FileExistsError(
        f"{output_dir} already holds {what}. Pass --resume_from_checkpoint to continue a run, --overwrite_output_dir "
        "to write into it anyway, or choose another --output_dir."
    )


def check_data(data_args, training_args, num_train_blocks: int | None, num_eval_blocks: int) -> None:
    """Checks that need the packed corpus, run before the first step. `num_train_blocks` is None for a stream,
    whose length is unknown (it has --max_steps)."""
    if num_train_blocks is not None:
        check_train_blocks(data_args, training_args, num_train_blocks)
    check_masking(data_args, training_args, num_train_blocks, num_eval_blocks)


def check_train_blocks(data_args, training_args, num_train_blocks: int) -> None:
    """With full batches only (`dataloader_drop_last`), fewer blocks than one batch train zero steps."""
    batch = training_args.per_device_train_batch_size * training_args.world_size
    if training_args.dataloader_drop_last and num_train_blocks < batch:
        processes = f" x {training_args.world_size} processes" if training_args.world_size > 1 else ""
        raise ValueError(
            f"The training split has {num_train_blocks} blocks of {data_args.max_seq_length} tokens, fewer than one "
            f"batch ({training_args.per_device_train_batch_size} per device{processes}), so nothing would be "
            "trained. Lower --per_device_train_batch_size, give more text, or shorten --max_seq_length."
        )


def training_steps(training_args, num_train_blocks: int | None) -> int:
    """The optimizer steps Trainer will take: `max_steps`, or the epochs' worth of full batches."""
    if training_args.max_steps > 0:
        return training_args.max_steps
    batches = num_train_blocks // (training_args.per_device_train_batch_size * training_args.world_size)
    return math.ceil(training_args.num_train_epochs * batches / training_args.gradient_accumulation_steps)


def check_masking(data_args, training_args, num_train_blocks: int | None, num_eval_blocks: int) -> None:
    """Refuse a masking probability under which batches without a single masked token are to be expected: such a
    batch has nothing to learn (loss 0, or NaN when it is the whole step) and makes the evaluation loss wrong.

    Each maskable token ([CLS] and [SEP] never are) is masked with probability p, so a batch of n of them has no
    masked token with probability (1 - p)^n. Summed over the run's training steps and its evaluation batches, this
    is the number of such batches to expect; it must stay below `_TOLERATED_UNMASKED_BATCHES`."""
    probability, maskable_per_block = data_args.mlm_probability, data_args.max_seq_length - 2
    blocks_per_step = (
        training_args.per_device_train_batch_size * training_args.world_size * training_args.gradient_accumulation_steps
    )
    train_tokens = maskable_per_block * blocks_per_step
    unmasked_steps = training_steps(training_args, num_train_blocks) * (1 - probability) ** train_tokens
    eval_batch = training_args.per_device_eval_batch_size
    full_batches, last_batch = divmod(num_eval_blocks, eval_batch)
    unmasked_eval_batches = full_batches * (1 - probability) ** (maskable_per_block * eval_batch)
    if last_batch:
        unmasked_eval_batches += (1 - probability) ** (maskable_per_block * last_batch)
    if unmasked_steps >= _TOLERATED_UNMASKED_BATCHES:
        raise ValueError(
            f"--mlm_probability {probability} masks on average {probability * train_tokens:.2g} of the {train_tokens} "
            f"maskable tokens of a training step, so about {unmasked_steps:.2g} steps would have no masked token "
            "(nothing to learn, a NaN loss). Raise --mlm_probability (BERT uses 0.15), "
            "--per_device_train_batch_size or --max_seq_length."
        )
    if unmasked_eval_batches >= _TOLERATED_UNMASKED_BATCHES:
        raise ValueError(
            f"--mlm_probability {probability} leaves about {unmasked_eval_batches:.2g} of the "
            f"{math.ceil(num_eval_blocks / eval_batch)} evaluation batches ({num_eval_blocks} blocks) without a "
            "masked token, which makes the evaluation loss wrong. Raise --mlm_probability (BERT uses 0.15), "
            "--per_device_eval_batch_size or --max_seq_length, or give more validation text."
        )

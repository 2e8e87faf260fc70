"""The data of a pretraining run: text, tokenizer, packed blocks. `load_pretraining_data` is the one place that
reads them, so the pipeline behind it can change without touching `pretrain`.

Every source goes through the on-disk pipeline of :mod:`hf_posenc.data.prepare`:

- ``--train_file`` and the built-in corpora are text files already;
- ``--dataset_name`` is first written to a text file in ``cache_dir()/hub_text/`` named by the hash of its content
  (so the same dataset gives the same file, and the prepared blocks of a second run are found in the cache);
- the WordPiece tokenizer is trained on at most ``--tokenizer_sample`` lines, drawn evenly over the corpus, and kept
  in ``cache_dir()/tokenizers/<key>/`` (key: the files' path, size and mtime, the vocabulary size, the sample and
  the block length), so that it is trained once: by the main process under ``accelerate launch`` (pretrain calls
  this function inside ``training_args.main_process_first``), and once per corpus across runs;
- the blocks are prepared in ``cache_dir()/prepared/<key>/`` or, with ``--prepared_dataset DIR``, in ``DIR``.

``--prepared_dataset DIR`` on a folder that already holds a complete preparation, without ``--train_file`` or
``--dataset_name``, trains on it as it is, with the tokenizer saved inside it: a corpus prepared on one machine can be
copied to another that does not have the text.

``--document_aware_packing`` prepares (under another cache key) the same blocks with each token's document
(``document_ids``), which the model reads to mask attention at document boundaries and restart positions; without it
a ``document_ids`` column is dropped, so a run is plain concatenation whatever folder it reads.

With ``--streaming`` nothing is prepared: :mod:`hf_posenc.data.streaming` reads, tokenizes and packs the text while
training (see there).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from .. import data
from ..data.prepare import METADATA_FILE
from ..storage import cache_dir, private_folder
from .checks import check_prepared_folder

logger = logging.getLogger(__name__)

DEFAULT_VOCAB_SIZE = 8000
# Bump when tokenizer training changes, so that tokenizers cached by an older version are trained again.
TOKENIZER_CACHE_VERSION = 1


@dataclass
class PretrainingData:
    """Packed blocks of both splits, the tokenizer that made them, and how the results file names their sources."""

    train: Any  # datasets.Dataset (or, streaming, datasets.IterableDataset) of full [CLS] ... [SEP] blocks
    validation: Any  # datasets.Dataset
    tokenizer: Any  # a transformers tokenizer
    dataset_description: str
    tokenizer_description: str
    streaming: bool = False


def load_pretraining_data(data_args, seed: int) -> PretrainingData:
    """Find the text `data_args` names, train (or load) the tokenizer and prepare (or find in the cache) the packed
    blocks of both splits; with ``--streaming``, the whole stream (accelerate gives each process its part)."""
    if not data_args.streaming:
        check_prepared_folder(data_args)
    prepared_folder = Path(data_args.prepared_dataset).expanduser() if data_args.prepared_dataset else None
    if (
        prepared_folder is not None
        and (prepared_folder / METADATA_FILE).is_file()
        and not (data_args.train_file or data_args.dataset_name)
    ):
        return _read_prepared(data_args, prepared_folder)

    train_files = _train_files(data_args)
    tokenizer = _load_tokenizer(data_args, train_files)
    description = data_args.train_file or data_args.dataset_name or f"hf_posenc built-in corpus '{data_args.corpus}'"
    tokenizer_description = (
        data_args.tokenizer_name or f"WordPiece trained on the training text ({len(tokenizer)} tokens)"
    )
    if data_args.streaming:
        from ..data.streaming import streaming_mlm_datasets

        train, validation = streaming_mlm_datasets(
            train_files=train_files,
            tokenizer=tokenizer,
            max_seq_length=data_args.max_seq_length,
            validation_files=data_args.validation_file,
            validation_documents=data_args.streaming_validation_documents,
            shuffle_buffer=data_args.streaming_shuffle_buffer,
            seed=seed,
        )
        return PretrainingData(train, validation, tokenizer, description, tokenizer_description, streaming=True)

    prepared = data.prepare_mlm_data(
        train_files=train_files,
        validation_files=data_args.validation_file,
        tokenizer=tokenizer,
        max_seq_length=data_args.max_seq_length,
        validation_fraction=data_args.validation_fraction,
        seed=seed,
        output_folder=prepared_folder,
        num_proc=data_args.preprocessing_num_workers,
        document_aware=data_args.document_aware_packing,
    )
    # One line per process, so that a launch shows (and a test counts) that only one process tokenized.
    print(f"{'prepared' if prepared.built else 'reused'} the pretraining corpus in {prepared.folder}", flush=True)
    train, validation = _with_document_ids_if_asked(data_args, *prepared.datasets(), prepared.folder)
    return PretrainingData(train, validation, tokenizer, description, tokenizer_description)


def _with_document_ids_if_asked(data_args, train, validation, folder: Path):
    """The splits with their ``document_ids`` column when --document_aware_packing asks for it (refusing a folder
    prepared without), and without it otherwise (the model would read it)."""
    has_documents = "document_ids" in train.column_names
    if data_args.document_aware_packing and not has_documents:
        raise ValueError(
            f"--document_aware_packing needs each token's document, but the corpus in {folder} was prepared without "
            "them; prepare it again with --document_aware_packing into another --prepared_dataset folder (or leave "
            "--prepared_dataset out to use the cache)."
        )
    if not data_args.document_aware_packing and has_documents:
        train, validation = train.remove_columns("document_ids"), validation.remove_columns("document_ids")
    return train, validation


def _read_prepared(data_args, folder: Path) -> PretrainingData:
    """A folder prepared earlier (possibly on another machine): its blocks and the tokenizer saved with them."""
    tokenizer = AutoTokenizer.from_pretrained(data_args.tokenizer_name or str(folder / "tokenizer"))
    train, validation = _with_document_ids_if_asked(
        data_args, *data.load_prepared_datasets(folder, tokenizer=tokenizer), folder
    )
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    if metadata.get("max_seq_length") != data_args.max_seq_length:
        raise ValueError(
            f"--prepared_dataset {folder} holds blocks of {metadata.get('max_seq_length')} tokens but --max_seq_length "
            f"is {data_args.max_seq_length}; pass --max_seq_length {metadata.get('max_seq_length')}, or prepare the "
            "corpus again into another folder."
        )
    return PretrainingData(
        train,
        validation,
        tokenizer,
        dataset_description=f"corpus prepared in {folder}",
        tokenizer_description=data_args.tokenizer_name or f"the tokenizer saved in {folder} ({len(tokenizer)} tokens)",
    )


def _train_files(data_args) -> list[Path]:
    if data_args.train_file:
        return [Path(data_args.train_file)]
    if data_args.dataset_name:
        return [hub_text_file(data_args.dataset_name, data_args.dataset_config_name, data_args.text_column)]
    return [data.builtin_corpus(data_args.corpus)]


def hub_text_file(name: str, config_name: str | None, text_column: str) -> Path:
    """A `datasets` dataset's text written as a text file in the layout, in ``cache_dir()/hub_text/`` under the hash
    of its content: the same dataset always gives the same file (same path, size and mtime), so what is prepared from
    it is found in the cache by the next run, and a changed dataset gives a new file."""
    documents = data.load_hub_text_dataset(name, config_name, text_column=text_column)
    folder = private_folder(cache_dir() / "hub_text")
    written = data.write_documents(documents, folder / f".hub-{os.getpid()}-{time.time_ns()}.txt")
    digest = hashlib.sha256()
    with open(written, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    target = folder / f"{digest.hexdigest()[:32]}.txt"
    if target.is_file():
        written.unlink()
    else:
        written.replace(target)
    return target


def _load_tokenizer(data_args, train_files: list[Path]):
    if data_args.tokenizer_name is None:
        return _cached_wordpiece_tokenizer(data_args, train_files)
    tokenizer = AutoTokenizer.from_pretrained(data_args.tokenizer_name)
    if data_args.vocab_size is not None and len(tokenizer) != data_args.vocab_size:
        raise ValueError(
            f"The tokenizer in {data_args.tokenizer_name} has {len(tokenizer)} tokens but --vocab_size is "
            f"{data_args.vocab_size}; drop --vocab_size to use the tokenizer's, or drop --tokenizer_name to train one."
        )
    return tokenizer


def _cached_wordpiece_tokenizer(data_args, train_files: list[Path]):
    """The WordPiece tokenizer of these files and settings: trained on the first call, read from the cache after."""
    from filelock import FileLock

    vocab_size = data_args.vocab_size or DEFAULT_VOCAB_SIZE
    recipe = {
        "version": TOKENIZER_CACHE_VERSION,
        "files": [_file_identity(path) for path in data.check_text_files(train_files, "--train_file")],
        "vocab_size": vocab_size,
        "sample": data_args.tokenizer_sample,
        "model_max_length": data_args.max_seq_length,
    }
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()[:32]
    root = private_folder(cache_dir() / "tokenizers")
    target = root / key
    with FileLock(str(root / f"{key}.lock")):
        if (target / "tokenizer.json").is_file():
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(target))
                print(f"reused the tokenizer in {target}", flush=True)
                _announce_smaller_vocabulary(tokenizer, vocab_size)
                return tokenizer
            except Exception as error:  # a damaged cached tokenizer is trained again, never trusted
                logger.warning("The cached tokenizer in %s cannot be read (%s); training it again.", target, error)
        tokenizer = data.train_wordpiece_tokenizer_on_files(
            train_files,
            vocab_size=vocab_size,
            model_max_length=data_args.max_seq_length,
            sample=data_args.tokenizer_sample,
        )
        building = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.tmp-"))
        tokenizer.save_pretrained(str(building))
        if target.exists():
            shutil.rmtree(target)
        building.replace(target)
    print(f"trained the tokenizer on {data_args.tokenizer_sample:,} lines at most, kept in {target}", flush=True)
    _announce_smaller_vocabulary(tokenizer, vocab_size)
    return tokenizer


def _announce_smaller_vocabulary(tokenizer, vocab_size: int) -> None:
    """WordPiece stops when the text has no more pairs to merge, so a small corpus gives fewer tokens than asked:
    say so when it happens, since the model's embedding table is sized by the tokenizer, not by --vocab_size."""
    if len(tokenizer) < vocab_size:
        print(
            f"note: the text yields a vocabulary of {len(tokenizer):,} tokens, fewer than --vocab_size {vocab_size:,} "
            f"(WordPiece found nothing more to merge); the model is built with {len(tokenizer):,}",
            flush=True,
        )


def _file_identity(path: Path) -> dict:
    info = path.stat()
    return {"path": str(path.resolve()), "size": info.st_size, "mtime_ns": info.st_mtime_ns}

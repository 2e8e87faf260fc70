"""The pretraining data pipeline at any scale: text files → tokenized → packed blocks in an on-disk Arrow dataset,
built once and reused.

Stages, each streaming with bounded memory (nothing holds the corpus or its token ids in Python lists):

1. the text files (one sentence or paragraph per line, a blank line between documents) are read line by line into an
   Arrow file of ``(text, document)`` rows;
2. ``Dataset.map(batched=True, num_proc=...)`` tokenizes it with the fast tokenizer (no special tokens), the ids in
   the narrowest unsigned integer type that holds the vocabulary;
3. whole documents are held out for validation exactly as :func:`~hf_posenc.data.packing.pack_for_mlm` does (the same
   documents for the same seed), or a validation file is used;
4. one pass packs each split as ``pack_for_mlm`` does (documents joined by ``[SEP]``, lines concatenated, full
   ``[CLS] ... [SEP]`` blocks of ``max_seq_length``, the tail dropped) into ``train.arrow`` / ``validation.arrow``.

The result lives in ``<cache>/<key>/`` where the key hashes everything the blocks depend on (each file's path, size and
modification time, the tokenizer's full serialisation, ``max_seq_length``, the validation settings and the seed), so a
second run with the same inputs reads the blocks without tokenizing, and a changed file or tokenizer never reuses a
stale cache. Preparation writes into a temporary folder that is renamed into place when complete, under a file lock:
concurrent processes (``accelerate launch``) prepare once, the others wait and read; a killed preparation leaves no
folder that a later run trusts; a folder that fails its checks is rebuilt.

The prepared datasets hold one column, ``input_ids``; :class:`~hf_posenc.data.masking.EpochMaskingCollator` (or any
``DataCollatorForLanguageModeling``) adds the attention mask and never masks ``[CLS]``, ``[SEP]`` and padding. With
``document_aware=True`` (document-aware packing) the same blocks carry a second column, ``document_ids`` (int32, the
index of each token's document, :func:`~hf_posenc.data.packing.document_ids_of_blocks`), and the cache key differs, so
a corpus prepared without them is never read as document-aware.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..storage import cache_dir, check_cache_path, private_folder
from .packing import document_ids_of_blocks
from .text import MAX_LINE_BYTES, check_text_files, iter_document_lines

logger = logging.getLogger(__name__)

__all__ = [
    "PREPARED_FORMAT_VERSION",
    "PreparedMLMData",
    "load_prepared_datasets",
    "prepare_mlm_data",
    "prepare_mlm_datasets",
    "prepared_cache_key",
    "token_dtype",
    "tokenizer_fingerprint",
]

# Bump when the prepared layout or the packing changes: older caches then get new keys and are never read.
PREPARED_FORMAT_VERSION = 1
METADATA_FILE = "prepared.json"
SPLIT_FILES = {"train": "train.arrow", "validation": "validation.arrow"}
_LINES_PER_WRITE = 10_000
_ROWS_PER_PACKING_BATCH = 10_000
_DISK_FULL_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@dataclass(frozen=True)
class PreparedMLMData:
    """Where a prepared corpus lives, and whether this call built it (False: it was read from the cache)."""

    folder: Path
    built: bool
    metadata: dict

    def datasets(self):
        """``(train, validation)`` memory-mapped ``datasets.Dataset`` objects."""
        return _load_splits(self.folder)


def token_dtype(vocabulary_size: int) -> str:
    """The narrowest unsigned integer type that holds every id of a vocabulary of this size."""
    for dtype in ("uint8", "uint16", "uint32"):
        if vocabulary_size - 1 <= np.iinfo(dtype).max:
            return dtype
    return "uint64"


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of the fast tokenizer's full serialisation (vocabulary, normaliser, pre-tokenizer, special tokens)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"The pretraining pipeline needs a fast tokenizer (a PreTrainedTokenizerFast); got "
            f"{type(tokenizer).__name__}. Load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
        )
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()


def _file_identity(path: Path) -> dict:
    info = path.stat()
    return {"path": str(path.resolve()), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def prepared_cache_key(
    train_files: Sequence[Path],
    validation_files: Sequence[Path] | None,
    tokenizer,
    *,
    max_seq_length: int,
    validation_fraction: float,
    seed: int,
    document_aware: bool = False,
) -> tuple[str, dict]:
    """``(key, what it was made of)``: the key changes whenever the blocks could (or their columns)."""
    recipe = {
        "format": PREPARED_FORMAT_VERSION,
        "train_files": [_file_identity(path) for path in train_files],
        "validation_files": None if validation_files is None else [_file_identity(path) for path in validation_files],
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_seq_length": max_seq_length,
        # Without a validation file, the held-out documents depend on the fraction and the seed; with one they do not.
        "validation_fraction": None if validation_files is not None else validation_fraction,
        "seed": None if validation_files is not None else seed,
    }
    if document_aware:  # only then, so that the keys of plain preparations (and their caches) stay as they were
        recipe["document_ids"] = True
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()[:32]
    return key, recipe


# ----------------------------------------------------------------------------------------------------------
# The cache: look up, check, build under a lock, rename into place
# ----------------------------------------------------------------------------------------------------------


def prepare_mlm_datasets(**arguments):
    """:func:`prepare_mlm_data` and then its ``(train, validation)`` datasets; takes the same keyword arguments."""
    return prepare_mlm_data(**arguments).datasets()


def prepare_mlm_data(
    *,
    train_files: str | os.PathLike | Sequence[str | os.PathLike],
    tokenizer,
    max_seq_length: int,
    validation_files: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    validation_fraction: float = 0.05,
    seed: int = 42,
    cache_folder: str | os.PathLike | None = None,
    output_folder: str | os.PathLike | None = None,
    num_proc: int | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    document_aware: bool = False,
) -> PreparedMLMData:
    """Prepare (or find already prepared) the packed MLM blocks of text files; see the module docstring.

    Args:
        train_files: text file(s) in the layout (one sentence or paragraph per line, blank lines between documents).
        tokenizer: a fast tokenizer with ``[CLS]``/``[SEP]``-like ``cls_token`` and ``sep_token``.
        max_seq_length: block length, ``[CLS]`` and ``[SEP]`` included.
        validation_files: text file(s) for validation; without them, whole documents are held out (about
            ``validation_fraction`` of the tokens, chosen with ``seed``, as :func:`pack_for_mlm` does).
        cache_folder: where prepared corpora are kept, one sub-folder per key; default
            ``cache_dir()/prepared`` (``$HF_POSENC_CACHE/prepared``), created private to the user.
        output_folder: write (or read, if it already holds this preparation) exactly this folder instead of a keyed
            sub-folder of the cache: a corpus prepared once on a CPU machine and copied elsewhere
            (``--prepared_dataset DIR``). A folder that holds another preparation is refused, never overwritten.
        num_proc: processes for tokenization (``Dataset.map``); ``None`` uses one process, in which the fast
            tokenizer already encodes each batch on all cores.
        max_line_bytes: longer lines are refused with an error that names the file and line.
        document_aware: also store each token's document (a ``document_ids`` column) for document-aware packing.

    Safe to call from several processes at once: one prepares, the others wait on a file lock and read its result.
    Under ``accelerate launch`` the main process may call it first (``training_args.main_process_first()``), but
    this is not required.

    Raises:
        ValueError / FileNotFoundError: bad arguments or bad input text (empty, binary, not UTF-8, a folder, a line
            without newline of many megabytes), a corpus too small for one block per split.
        FileExistsError: ``output_folder`` holds something else.
        RuntimeError: the disk filled up during preparation (nothing half-written is left).
    """
    from filelock import FileLock

    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS], a token, [SEP]), got {max_seq_length}.")
    if validation_files is None and not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1 (exclusive), got {validation_fraction}.")
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(
            "Packing needs a tokenizer with a classification and a separator token (cls_token and sep_token, like "
            f"BERT's [CLS] and [SEP]); this tokenizer has cls_token={tokenizer.cls_token!r}, "
            f"sep_token={tokenizer.sep_token!r}."
        )
    train_paths = check_text_files(train_files, "train file")
    validation_paths = None if validation_files is None else check_text_files(validation_files, "validation file")
    key, recipe = prepared_cache_key(
        train_paths,
        validation_paths,
        tokenizer,
        max_seq_length=max_seq_length,
        validation_fraction=validation_fraction,
        seed=seed,
        document_aware=document_aware,
    )
    if output_folder is not None:
        target = Path(output_folder).expanduser().resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        lock_path = target.parent / f".{target.name}.lock"
    else:
        root = private_folder(Path(cache_folder) if cache_folder is not None else cache_dir() / "prepared")
        target = check_cache_path(root / key)
        lock_path = root / f"{key}.lock"

    with FileLock(str(lock_path)):
        existing = _trusted_metadata(target, key)
        if existing is not None:
            logger.info("Using the prepared corpus in %s (no tokenization)", target)
            return PreparedMLMData(target, built=False, metadata=existing)
        if target.exists():
            if output_folder is not None and not _is_our_folder(target):
                raise FileExistsError(
                    f"{target} exists and is not a prepared corpus of hf_posenc; choose an empty or new folder for "
                    "the prepared dataset."
                )
            if output_folder is not None and _metadata(target) is not None:
                raise FileExistsError(
                    f"{target} holds a corpus prepared from other files, tokenizer or settings (key "
                    f"{_metadata(target).get('key')}, wanted {key}); choose another folder or delete it."
                )
            logger.warning("The prepared corpus in %s is incomplete or damaged; preparing it again.", target)
            _remove(target)
        for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a killed preparation
            _remove(stale)
        building = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        try:
            metadata = _build(
                building,
                train_paths,
                validation_paths,
                tokenizer,
                max_seq_length=max_seq_length,
                validation_fraction=validation_fraction,
                seed=seed,
                num_proc=num_proc,
                max_line_bytes=max_line_bytes,
                document_aware=document_aware,
            )
            metadata.update(key=key, recipe=recipe)
            _write_metadata(building, metadata)
            os.chmod(building, 0o700 if output_folder is None else 0o777 & ~_umask())  # mkdtemp made it 0700
            os.rename(building, target)
        except OSError as error:
            _remove(building)
            if error.errno in _DISK_FULL_ERRORS:
                raise RuntimeError(
                    f"The disk filled up while preparing the corpus in {target.parent} ({os.strerror(error.errno)}); "
                    "nothing half-written was kept. Free space there or point the preparation elsewhere "
                    "(cache_folder=, $HF_POSENC_CACHE, or an output folder on a larger disk)."
                ) from error
            raise
        except BaseException:
            _remove(building)
            raise
    return PreparedMLMData(target, built=True, metadata=metadata)


def load_prepared_datasets(folder: str | os.PathLike, tokenizer=None):
    """``(train, validation)`` from a folder written by :func:`prepare_mlm_data` (``--prepared_dataset DIR``).

    With ``tokenizer``, refuses a folder prepared with another tokenizer (the ids would mean other tokens)."""
    folder = Path(folder)
    metadata = _metadata(folder)
    problem = f"it has no readable {METADATA_FILE}" if metadata is None else _check_files(folder, metadata)
    if problem is not None:
        raise ValueError(
            f"{folder} is not a complete prepared corpus ({problem}); prepare it again with "
            "prepare_mlm_data(..., output_folder=...)."
        )
    if tokenizer is not None and metadata["recipe"]["tokenizer"] != tokenizer_fingerprint(tokenizer):
        raise ValueError(
            f"{folder} was prepared with another tokenizer than the one given; use the tokenizer saved in "
            f"{folder / 'tokenizer'} or prepare the corpus again with this one."
        )
    return _load_splits(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _metadata(folder: Path) -> dict | None:
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metadata if isinstance(metadata, dict) else None


def _is_our_folder(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    return not any(folder.iterdir()) or (folder / METADATA_FILE).exists() or (folder / SPLIT_FILES["train"]).exists()


def _check_files(folder: Path, metadata: dict) -> str | None:
    """What is wrong with a prepared folder's files, or None when they match its metadata."""
    for split, file_name in SPLIT_FILES.items():
        path = folder / file_name
        expected = metadata.get("splits", {}).get(split, {})
        if not path.is_file():
            return f"{file_name} is missing"
        if path.stat().st_size != expected.get("bytes"):
            return f"{file_name} has {path.stat().st_size} bytes, {expected.get('bytes')} were written"
    return None


def _trusted_metadata(folder: Path, key: str) -> dict | None:
    metadata = _metadata(folder)
    if metadata is None or metadata.get("format") != PREPARED_FORMAT_VERSION or metadata.get("key") != key:
        return None
    problem = _check_files(folder, metadata)
    if problem is not None:
        logger.warning("Prepared corpus %s is damaged (%s).", folder, problem)
        return None
    try:
        train, validation = _load_splits(folder)
    except Exception as error:  # any failure to read is a damaged cache: rebuild rather than train on it
        logger.warning("Prepared corpus %s cannot be read (%s).", folder, error)
        return None
    if (train.num_rows, validation.num_rows) != (
        metadata["splits"]["train"]["blocks"],
        metadata["splits"]["validation"]["blocks"],
    ):
        return None
    return metadata


def _write_metadata(folder: Path, metadata: dict) -> None:
    with open(folder / METADATA_FILE, "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def _load_splits(folder: Path):
    import datasets

    return tuple(datasets.Dataset.from_file(str(folder / SPLIT_FILES[split])) for split in ("train", "validation"))


# ----------------------------------------------------------------------------------------------------------
# Building: lines → tokens → held-out documents → blocks
# ----------------------------------------------------------------------------------------------------------


def _build(
    folder: Path,
    train_paths: list[Path],
    validation_paths: list[Path] | None,
    tokenizer,
    *,
    max_seq_length: int,
    validation_fraction: float,
    seed: int,
    num_proc: int | None,
    max_line_bytes: int,
    document_aware: bool = False,
) -> dict:
    started = time.perf_counter()
    dtype = token_dtype(len(tokenizer))
    work = folder / "work"
    work.mkdir()
    logger.info("Preparing the pretraining corpus in %s", folder)
    train_tokens, train_documents = _tokenized_lines(
        work, "train", train_paths, tokenizer, dtype, num_proc, max_line_bytes
    )
    if validation_paths is not None:
        validation_tokens, _ = _tokenized_lines(
            work, "validation", validation_paths, tokenizer, dtype, num_proc, max_line_bytes
        )
        sources = {"train": (train_tokens, None), "validation": (validation_tokens, None)}
    else:
        held_out = _held_out_documents(train_tokens, train_documents, max_seq_length, validation_fraction, seed)
        sources = {"train": (train_tokens, ~held_out), "validation": (train_tokens, held_out)}

    body_length = max_seq_length - 2
    splits = {}
    for split, (tokens, keep_document) in sources.items():
        path = folder / SPLIT_FILES[split]
        blocks, stream_tokens = _write_blocks(
            path, tokens, keep_document, tokenizer, max_seq_length, dtype, document_aware
        )
        splits[split] = {"blocks": blocks, "tokens": stream_tokens, "bytes": path.stat().st_size}
    for split in ("train", "validation"):
        if splits[split]["blocks"] == 0:
            raise ValueError(
                f"The corpus is too small for max_seq_length={max_seq_length}: the {split} split has "
                f"{splits[split]['tokens']} tokens, fewer than one block of {body_length} tokens plus [CLS] and [SEP] "
                f"(training {splits['train']['tokens']} tokens, validation {splits['validation']['tokens']}). Use a "
                "smaller max_seq_length, more text, or a different validation_fraction."
            )
    del train_tokens, sources
    shutil.rmtree(work)
    tokenizer.save_pretrained(str(folder / "tokenizer"))  # so that a copied folder can be trained on elsewhere
    seconds = time.perf_counter() - started
    logger.info(
        "Prepared %d training and %d validation blocks of %d tokens in %.1f s",
        splits["train"]["blocks"],
        splits["validation"]["blocks"],
        max_seq_length,
        seconds,
    )
    metadata = {
        "format": PREPARED_FORMAT_VERSION,
        "max_seq_length": max_seq_length,
        "dtype": dtype,
        "vocabulary_size": len(tokenizer),
        "splits": splits,
        "seconds": round(seconds, 3),
    }
    if document_aware:
        metadata["document_ids"] = True
    return metadata


class _Tokenize:
    """The batched map function (a class, so that ``num_proc`` workers can pickle it)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, batch):
        encoded = self.tokenizer(
            batch["text"],
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        return {"input_ids": encoded["input_ids"]}


def _line_batches(paths: list[Path], max_line_bytes: int, flag: str) -> Iterator[tuple[list[str], list[int]]]:
    lines: list[str] = []
    documents: list[int] = []
    for document, line in iter_document_lines(paths, max_line_bytes=max_line_bytes, flag=flag):
        lines.append(line)
        documents.append(document)
        if len(lines) == _LINES_PER_WRITE:
            yield lines, documents
            lines, documents = [], []
    if lines:
        yield lines, documents


def _tokenized_lines(work: Path, split: str, paths, tokenizer, dtype: str, num_proc, max_line_bytes: int):
    """A memory-mapped dataset of ``(input_ids, document)`` per line, and the number of documents."""
    import datasets
    from datasets.arrow_writer import ArrowWriter

    lines_file = work / f"{split}-lines.arrow"
    features = datasets.Features({"text": datasets.Value("string"), "document": datasets.Value("int64")})
    documents = 0
    with ArrowWriter(features=features, path=str(lines_file)) as writer:
        for lines, owners in _line_batches(paths, max_line_bytes, f"{split} file"):
            writer.write_batch({"text": lines, "document": owners})
            documents = owners[-1] + 1
        writer.finalize()
    lines_dataset = datasets.Dataset.from_file(str(lines_file))
    tokenized = lines_dataset.map(
        _Tokenize(tokenizer),
        batched=True,
        batch_size=1000,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        remove_columns=["text"],
        features=datasets.Features(
            {"document": datasets.Value("int64"), "input_ids": datasets.Sequence(datasets.Value(dtype))}
        ),
        cache_file_name=str(work / f"{split}-tokens.arrow"),
        new_fingerprint=f"hf-posenc-tokens-{split}-{os.getpid()}-{time.time_ns()}",
        load_from_cache_file=False,
        desc=f"Tokenizing the {split} text",
    )
    return tokenized, documents


def _record_batches(dataset) -> Iterator:
    """The dataset's rows as Arrow record batches, read from the memory map (no Python objects per token)."""
    yield from dataset.data.table.to_batches(max_chunksize=_ROWS_PER_PACKING_BATCH)


def _document_token_counts(tokens, documents: int) -> np.ndarray:
    counts = np.zeros(documents, dtype=np.int64)
    for batch in _record_batches(tokens):
        ids = batch.column(batch.schema.get_field_index("input_ids"))
        owners = batch.column(batch.schema.get_field_index("document")).to_numpy()
        lengths = np.diff(ids.offsets.to_numpy())
        np.add.at(counts, owners, lengths)
    return counts


def _held_out_documents(tokens, documents: int, max_seq_length: int, fraction: float, seed: int) -> np.ndarray:
    """The documents pack_for_mlm holds out for validation, as a boolean mask over documents.

    The same choice: documents are shuffled with ``random.Random(seed)`` (here an array of indices, so the
    permutation is the same as that of a list) and taken until they reach ``fraction`` of the tokens (each document
    counting its tokens plus one [SEP]) and at least one block, leaving at least one document for training."""
    if documents < 2:
        raise ValueError(
            "The validation split holds out whole documents, but the corpus has a single document. Separate "
            "documents with blank lines, or give validation text separately (--validation_file)."
        )
    counts = _document_token_counts(tokens, documents) + 1
    order = np.arange(documents, dtype=np.int64)
    random.Random(seed).shuffle(order)
    wanted = max(fraction * int(counts.sum()), max_seq_length - 2 + 1)
    taken_before = np.cumsum(counts[order[:-1]])
    # pack_for_mlm adds documents while the total so far is below `wanted`: all up to the first that reaches it.
    taken = min(int(np.searchsorted(taken_before, wanted, side="left")) + 1, documents - 1)
    held_out = np.zeros(documents, dtype=bool)
    held_out[order[:taken]] = True
    return held_out


class _Packer:
    """Cuts one token stream into [CLS] body [SEP] blocks as the stream arrives, keeping only the unfinished tail."""

    def __init__(self, cls_id: int, sep_id: int, max_seq_length: int, dtype: str, document_aware: bool = False):
        self.cls_id, self.sep_id, self.dtype = cls_id, sep_id, np.dtype(dtype)
        self.body_length = max_seq_length - 2
        self.tail = np.zeros(0, dtype=self.dtype)
        self.document_aware = document_aware
        self.tail_owners = np.zeros(0, dtype=np.int64)  # the document of each tail token (document-aware only)
        self.last_document = None
        self.tokens = 0
        self.document_ids = None  # of the blocks the last `add` returned (document-aware only)

    def add(self, values: np.ndarray, lengths: np.ndarray, owners: np.ndarray) -> np.ndarray:
        """Append lines (their ids concatenated in ``values``, one length and document per line); return the blocks
        completed, as an [n, max_seq_length] array (and, document-aware, set ``self.document_ids`` to theirs)."""
        previous = np.concatenate([[-1 if self.last_document is None else self.last_document], owners[:-1]])
        starts_document = owners != previous
        if self.last_document is None:
            starts_document[0] = False  # no [SEP] before the first document of a split
        separators = starts_document.astype(np.int64)
        out_lengths = lengths + separators
        out_starts = np.cumsum(out_lengths) - out_lengths
        stream = np.empty(int(out_lengths.sum()), dtype=self.dtype)
        stream[out_starts[starts_document]] = self.sep_id
        source_starts = np.cumsum(lengths) - lengths
        shift = np.repeat(out_starts + separators - source_starts, lengths)
        stream[shift + np.arange(len(values))] = values
        if self.document_aware:
            stream_owners = np.empty(len(stream), dtype=np.int64)
            stream_owners[out_starts[starts_document]] = previous[starts_document]  # a [SEP] ends the document before
            stream_owners[shift + np.arange(len(values))] = np.repeat(owners, lengths)
        self.last_document = int(owners[-1])
        self.tokens += len(stream)
        stream = np.concatenate([self.tail, stream])
        complete = len(stream) // self.body_length
        body = stream[: complete * self.body_length].reshape(complete, self.body_length)
        self.tail = stream[complete * self.body_length :].copy()
        if self.document_aware:
            stream_owners = np.concatenate([self.tail_owners, stream_owners])
            body_owners = stream_owners[: complete * self.body_length].reshape(complete, self.body_length)
            self.document_ids = document_ids_of_blocks(body_owners)
            self.tail_owners = stream_owners[complete * self.body_length :].copy()
        return np.concatenate(
            [
                np.full((complete, 1), self.cls_id, dtype=self.dtype),
                body,
                np.full((complete, 1), self.sep_id, dtype=self.dtype),
            ],
            axis=1,
        )


def _write_blocks(
    path: Path, tokens, keep_document, tokenizer, max_seq_length: int, dtype: str, document_aware: bool = False
) -> tuple[int, int]:
    """Pack the lines of the kept documents into blocks written to ``path``; ``(blocks, tokens in the stream)``."""
    import datasets
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter

    packer = _Packer(tokenizer.cls_token_id, tokenizer.sep_token_id, max_seq_length, dtype, document_aware)
    columns = {"input_ids": datasets.Sequence(datasets.Value(dtype))}
    if document_aware:
        columns["document_ids"] = datasets.Sequence(datasets.Value("int32"))
    features = datasets.Features(columns)
    blocks = 0
    with ArrowWriter(features=features, path=str(path)) as writer:
        for batch in _record_batches(tokens):
            ids = batch.column(batch.schema.get_field_index("input_ids"))
            owners = batch.column(batch.schema.get_field_index("document")).to_numpy()
            if len(owners) == 0:
                continue
            if keep_document is not None:
                rows = keep_document[owners]
                if not rows.any():
                    continue
                ids = ids.filter(pa.array(rows))
                owners = owners[rows]
            offsets = ids.offsets.to_numpy()
            values = ids.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
            completed = packer.add(values, np.diff(offsets), owners)
            if len(completed):
                row_offsets = pa.array(np.arange(len(completed) + 1, dtype=np.int32) * max_seq_length)
                table = {"input_ids": pa.ListArray.from_arrays(row_offsets, pa.array(completed.reshape(-1)))}
                if document_aware:
                    table["document_ids"] = pa.ListArray.from_arrays(
                        row_offsets, pa.array(packer.document_ids.reshape(-1))
                    )
                writer.write_table(pa.table(table))
                blocks += len(completed)
        writer.finalize()
    return blocks, packer.tokens


def iter_blocks(dataset) -> Iterable[np.ndarray]:
    """The blocks of a prepared dataset as [rows, max_seq_length] arrays, batch by batch (for tests and tools)."""
    for batch in _record_batches(dataset):
        ids = batch.column(0)
        offsets = ids.offsets.to_numpy()
        width = int(offsets[1] - offsets[0]) if len(offsets) > 1 else 0
        values = ids.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
        yield values.reshape(-1, width) if width else values.reshape(0, 0)

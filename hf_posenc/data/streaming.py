"""Streaming pretraining data: text files read, tokenized and packed while training, nothing prepared on disk.

For corpora bigger than the disk (or than the patience for a preparation): :func:`streaming_mlm_datasets` returns a
``datasets.IterableDataset`` of the same ``[CLS] ... [SEP]`` blocks as :mod:`hf_posenc.data.prepare` (documents
joined by ``[SEP]``, lines concatenated), built on the fly:

1. documents are read line by line from the files (one shard per file);
2. ``datasets.distributed.split_dataset_by_node`` gives each process its own documents: whole files when the number
   of files is a multiple of the number of processes, otherwise every ``world_size``-th document;
3. a batched ``map`` tokenizes :data:`DOCUMENTS_PER_BATCH` documents at a time with the fast tokenizer and packs them;
   the tail of each batch shorter than a block is dropped (at most one block's worth of tokens per batch of
   documents: the price of a packing that keeps no state between batches, so every pass over the stream, a resumed
   one included, yields the same blocks);
4. ``shuffle(seed, buffer_size)`` shuffles blocks in a buffer (and the order of the files); ``set_epoch`` changes
   that order in each epoch.

Validation is a small in-memory ``datasets.Dataset``: the blocks of a validation file, or of the first
``validation_documents`` documents of the first training file, which the training stream then skips (so no document
is in both).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from .text import check_text_files, iter_document_lines

__all__ = ["DOCUMENTS_PER_BATCH", "pack_documents", "streaming_mlm_datasets"]

DOCUMENTS_PER_BATCH = 1000


def _documents(shards: Sequence[tuple[str, int, int | None]]) -> Iterator[dict]:
    """``{"lines": [...]}`` per document of each ``(path, skip, take)`` shard: the file's documents after the first
    ``skip``, at most ``take`` of them (None: all)."""
    for path, skip, take in shards:
        lines: list[str] = []
        current, kept = None, 0
        for document, line in iter_document_lines([path], flag="train file"):
            if document < skip:
                continue
            if document != current:
                if lines:
                    yield {"lines": lines}
                    kept += 1
                    lines = []
                if take is not None and kept >= take:
                    break
                current = document
            lines.append(line)
        if lines:
            yield {"lines": lines}


class PackDocuments:
    """The batched map function: tokenize a batch of documents and pack it into full blocks (a class so that data
    loader workers can pickle it)."""

    def __init__(self, tokenizer, max_seq_length: int):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length

    def __call__(self, batch: dict) -> dict:
        return {"input_ids": pack_documents(batch["lines"], self.tokenizer, self.max_seq_length).tolist()}


def pack_documents(documents: Sequence[Sequence[str]], tokenizer, max_seq_length: int) -> np.ndarray:
    """[blocks, max_seq_length] array: the documents tokenized (no special tokens), joined by ``[SEP]``, cut into
    ``[CLS] ... [SEP]`` blocks; the tail shorter than a block is dropped."""
    lines = [line for document in documents for line in document]
    encoded = tokenizer(
        lines, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False, verbose=False
    )["input_ids"]
    pieces, position = [], 0
    for index, document in enumerate(documents):
        if index:
            pieces.append([tokenizer.sep_token_id])
        for ids in encoded[position : position + len(document)]:
            pieces.append(ids)
        position += len(document)
    stream = np.fromiter((token for piece in pieces for token in piece), dtype=np.int64)
    body_length = max_seq_length - 2
    count = len(stream) // body_length
    body = stream[: count * body_length].reshape(count, body_length)
    return np.concatenate(
        [np.full((count, 1), tokenizer.cls_token_id), body, np.full((count, 1), tokenizer.sep_token_id)], axis=1
    )


def _validation_blocks(shards, tokenizer, max_seq_length: int):
    import datasets

    blocks, batch = [], []
    for document in _documents(shards):
        batch.append(document["lines"])
        if len(batch) == DOCUMENTS_PER_BATCH:
            blocks.append(pack_documents(batch, tokenizer, max_seq_length))
            batch = []
    if batch:
        blocks.append(pack_documents(batch, tokenizer, max_seq_length))
    stacked = np.concatenate(blocks) if blocks else np.zeros((0, max_seq_length), dtype=np.int64)
    return datasets.Dataset.from_dict({"input_ids": stacked.tolist()})


def streaming_mlm_datasets(
    *,
    train_files: str | os.PathLike | Sequence[str | os.PathLike],
    tokenizer,
    max_seq_length: int,
    validation_files: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    validation_documents: int = 10,
    shuffle_buffer: int = 10_000,
    seed: int = 42,
    rank: int = 0,
    world_size: int = 1,
):
    """``(train, validation)``: a ``datasets.IterableDataset`` of this process's blocks, and a ``datasets.Dataset``
    of validation blocks; see the module docstring.

    Raises:
        ValueError / FileNotFoundError: bad files (see :func:`~hf_posenc.data.text.check_text_files`), bad numbers,
            or a validation split without a single block.
    """
    import datasets
    from datasets.distributed import split_dataset_by_node

    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS], a token, [SEP]), got {max_seq_length}.")
    if validation_documents < 1 or shuffle_buffer < 1:
        raise ValueError(
            f"validation_documents and shuffle_buffer must be at least 1, got {validation_documents} and "
            f"{shuffle_buffer}."
        )
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank {rank} of {world_size}.")
    paths = [str(path) for path in check_text_files(train_files, "train file")]
    if validation_files is not None:
        validation_shards = [(str(path), 0, None) for path in check_text_files(validation_files, "validation file")]
        skip = 0
    else:
        validation_shards = [(paths[0], 0, validation_documents)]
        skip = validation_documents
    validation = _validation_blocks(validation_shards, tokenizer, max_seq_length)
    if len(validation) == 0:
        source = (
            "the validation file" if validation_files is not None else f"the first {validation_documents} documents"
        )
        raise ValueError(
            f"The streaming validation split ({source}) holds fewer tokens than one block of {max_seq_length}; raise "
            "--streaming_validation_documents, give a longer --validation_file, or shorten --max_seq_length."
        )

    shards = [(path, skip if index == 0 else 0, None) for index, path in enumerate(paths)]
    documents = datasets.IterableDataset.from_generator(
        _documents,
        gen_kwargs={"shards": shards},
        features=datasets.Features({"lines": datasets.Sequence(datasets.Value("string"))}),
    )
    documents = split_dataset_by_node(documents, rank=rank, world_size=world_size)
    blocks = documents.map(
        PackDocuments(tokenizer, max_seq_length),
        batched=True,
        batch_size=DOCUMENTS_PER_BATCH,
        remove_columns=["lines"],
        features=datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"))}),
    )
    # Trainer would stop at step 0 without a word on an empty stream; one batch of documents tells it here.
    if next(iter(blocks), None) is None:  # (take(1) would be split between the processes too)
        held_out = "" if validation_files is not None else f" after the first {validation_documents} documents"
        raise ValueError(
            f"The training stream{held_out} holds fewer tokens than one block of {max_seq_length} for process {rank} "
            f"of {world_size}; lower --streaming_validation_documents, give a --validation_file, or more text."
        )
    return blocks.shuffle(seed=seed, buffer_size=shuffle_buffer), validation

"""In-memory packing for masked-language-model training: documents in Python lists → full [CLS] ... [SEP] blocks.

The small-corpus path (and the reference the on-disk pipeline of :mod:`hf_posenc.data.prepare` is tested against).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["document_ids_of_blocks", "pack_for_mlm"]


def _token_ids_per_document(documents: Sequence[Sequence[str]], tokenizer, batch_lines: int = 4096) -> list:
    import numpy as np

    lines, owners = [], []
    for index, document in enumerate(documents):
        for line in document:
            lines.append(line)
            owners.append(index)
    per_document: list[list] = [[] for _ in documents]
    for start in range(0, len(lines), batch_lines):
        batch = lines[start : start + batch_lines]
        encoded = tokenizer(
            batch, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False, verbose=False
        )["input_ids"]
        for owner, ids in zip(owners[start : start + batch_lines], encoded):
            per_document[owner].append(ids)
    return [np.fromiter((token for ids in pieces for token in ids), dtype=np.int64) for pieces in per_document]


def _blocks(document_ids: list, cls_id: int, sep_id: int, max_seq_length: int):
    """``(blocks, owners, stream length)``: the [n_blocks, max_seq_length] array of documents joined by [SEP] and
    cut into [CLS] ... [SEP] blocks, and the [n_blocks, max_seq_length] index of the document each token belongs to
    (:func:`document_ids_of_blocks`)."""
    import numpy as np

    body_length = max_seq_length - 2
    pieces, owner_pieces = [], []
    for index, ids in enumerate(document_ids):
        if index:
            pieces.append(np.array([sep_id], dtype=np.int64))
            owner_pieces.append(np.array([index - 1], dtype=np.int64))
        pieces.append(ids)
        owner_pieces.append(np.full(len(ids), index, dtype=np.int64))
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    owners = np.concatenate(owner_pieces) if owner_pieces else np.zeros(0, dtype=np.int64)
    n_blocks = len(stream) // body_length
    body = stream[: n_blocks * body_length].reshape(n_blocks, body_length)
    blocks = np.concatenate(
        [np.full((n_blocks, 1), cls_id, dtype=np.int64), body, np.full((n_blocks, 1), sep_id, dtype=np.int64)],
        axis=1,
    )
    return blocks, document_ids_of_blocks(owners[: n_blocks * body_length].reshape(n_blocks, body_length)), len(stream)


def document_ids_of_blocks(body_owners):
    """The ``document_ids`` column of document-aware packing from the [n_blocks, max_seq_length - 2] document index
    of each block's body: a [SEP] that separates two documents belongs to the one it ends (alone, a document is
    ``[CLS] ... [SEP]``), the block's [CLS] to its first document and its closing [SEP] to its last. As int32."""
    import numpy as np

    body_owners = np.asarray(body_owners, dtype=np.int32)
    return np.concatenate([body_owners[:, :1], body_owners, body_owners[:, -1:]], axis=1)


def _blocks_to_dataset(blocks, special_ids: set[int], document_ids=None):
    import datasets
    import numpy as np

    special = np.isin(blocks, sorted(special_ids)).astype(np.int8)
    columns = {
        "input_ids": blocks.tolist(),
        "attention_mask": np.ones_like(blocks, dtype=np.int8).tolist(),
        "token_type_ids": np.zeros_like(blocks, dtype=np.int8).tolist(),
        "special_tokens_mask": special.tolist(),
    }
    if document_ids is not None:
        columns["document_ids"] = document_ids.tolist()
    return datasets.Dataset.from_dict(columns)


def pack_for_mlm(
    documents: Sequence[Sequence[str]],
    tokenizer,
    max_seq_length: int,
    validation_fraction: float = 0.05,
    seed: int = 42,
    *,
    validation_documents: Sequence[Sequence[str]] | None = None,
    document_aware: bool = False,
):
    """Tokenize documents and pack them into full blocks for masked-language-model training.

    Each split's documents are tokenized (batched, without special tokens), joined into one token stream
    with a ``[SEP]`` between consecutive documents (lines of a document are simply concatenated, as in
    BERT's and RoBERTa's full-sentence packing), and cut into blocks of ``max_seq_length - 2`` tokens, each
    wrapped as ``[CLS] ... [SEP]``. Every block is full (no padding); the tail of a stream shorter than a
    block is dropped. Blocks may therefore start or end mid-sentence and span a document boundary.

    Validation holds out whole documents, so no document is in both splits: documents are shuffled with
    ``seed`` and taken until they reach ``validation_fraction`` of the tokens and at least one block; the
    rest, in their original order, are the training split. With ``validation_documents`` (e.g. from a
    ``--validation_file``) those are used instead and nothing is held out.

    Returns ``(train, validation)`` ``datasets.Dataset`` objects with the int columns ``input_ids``,
    ``attention_mask`` (all ones), ``token_type_ids`` (all zeros) and ``special_tokens_mask`` (1 on
    ``[CLS]``/``[SEP]``; ``DataCollatorForLanguageModeling`` then never masks them). With ``document_aware``
    (document-aware packing) the blocks are the same and a ``document_ids`` column gives each token's document
    (:func:`document_ids_of_blocks`): the model then attends only inside each document and restarts positions at
    each one.

    Raises:
        ValueError: bad arguments, a single document to split, or a corpus too small for one block in
            each split (with the token counts and what to change).
    """
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS], a token, [SEP]), got {max_seq_length}.")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1 (exclusive), got {validation_fraction}.")
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls_id is None or sep_id is None:
        raise ValueError(
            "pack_for_mlm needs a tokenizer with a classification and a separator token (cls_token and "
            "sep_token, like BERT's [CLS] and [SEP]); this tokenizer has "
            f"cls_token={tokenizer.cls_token!r}, sep_token={tokenizer.sep_token!r}."
        )
    documents = [list(document) for document in documents if any(line.strip() for line in document)]
    if not documents:
        raise ValueError("The corpus is empty: there is no text to pack.")
    body_length = max_seq_length - 2

    train_ids = _token_ids_per_document(documents, tokenizer)
    if validation_documents is not None:
        validation_documents = [list(doc) for doc in validation_documents if any(line.strip() for line in doc)]
        if not validation_documents:
            raise ValueError("The validation documents hold no text.")
        validation_ids = _token_ids_per_document(validation_documents, tokenizer)
    else:
        if len(documents) < 2:
            raise ValueError(
                "The validation split holds out whole documents, but the corpus has a single document. "
                "Separate documents with blank lines, or give validation text separately (--validation_file)."
            )
        order = list(range(len(documents)))
        random.Random(seed).shuffle(order)
        total_tokens = sum(len(ids) + 1 for ids in train_ids)
        wanted = max(validation_fraction * total_tokens, body_length + 1)
        held_out, held_out_tokens = set(), 0
        for index in order[:-1]:  # always leave one document for training
            if held_out_tokens >= wanted:
                break
            held_out.add(index)
            held_out_tokens += len(train_ids[index]) + 1
        validation_ids = [ids for index, ids in enumerate(train_ids) if index in held_out]
        train_ids = [ids for index, ids in enumerate(train_ids) if index not in held_out]

    special_ids = {cls_id, sep_id}
    train_blocks, train_owners, train_tokens = _blocks(train_ids, cls_id, sep_id, max_seq_length)
    validation_blocks, validation_owners, validation_tokens = _blocks(validation_ids, cls_id, sep_id, max_seq_length)
    for split_name, n_blocks, n_tokens in (
        ("training", len(train_blocks), train_tokens),
        ("validation", len(validation_blocks), validation_tokens),
    ):
        if n_blocks == 0:
            raise ValueError(
                f"The corpus is too small for max_seq_length={max_seq_length}: the {split_name} split has "
                f"{n_tokens} tokens, fewer than one block of {body_length} tokens plus [CLS] and [SEP] "
                f"(training {train_tokens} tokens, validation {validation_tokens}). Use a smaller "
                "--max_seq_length, more text, or a different validation_fraction."
            )
    return (
        _blocks_to_dataset(train_blocks, special_ids, train_owners if document_aware else None),
        _blocks_to_dataset(validation_blocks, special_ids, validation_owners if document_aware else None),
    )

"""In-memory packing for MLM (hf_posenc.data.packing)."""

from __future__ import annotations

import pytest

from hf_posenc import data


def _marked_documents(count: int = 40) -> list[list[str]]:
    # Each document repeats its own marker word, so a block's origin can be read back from its tokens.
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    return [
        [
            f"marker{index} " + " ".join(words[(index + k) % len(words)] for k in range(25)) + ".",
            f"marker{index} again, with more words here.",
        ]
        for index in range(count)
    ]


@pytest.fixture(scope="module")
def marked():
    documents = _marked_documents()
    return documents, data.train_wordpiece_tokenizer(documents, vocab_size=200, min_frequency=1)


def _markers(dataset, tokenizer) -> set[str]:
    return {
        token
        for row in dataset["input_ids"]
        for token in tokenizer.convert_ids_to_tokens(row)
        if token.startswith("marker")
    }


def test_pack_for_mlm_blocks_and_columns(marked):
    documents, tokenizer = marked
    train, validation = data.pack_for_mlm(documents, tokenizer, max_seq_length=32, validation_fraction=0.1)
    assert train.column_names == ["input_ids", "attention_mask", "token_type_ids", "special_tokens_mask"]
    for split in (train, validation):
        assert split.num_rows >= 1
        for row in split:
            assert len(row["input_ids"]) == 32
            assert row["input_ids"][0] == tokenizer.cls_token_id and row["input_ids"][-1] == tokenizer.sep_token_id
            assert row["attention_mask"] == [1] * 32 and row["token_type_ids"] == [0] * 32
            expected_special = [int(i in (tokenizer.cls_token_id, tokenizer.sep_token_id)) for i in row["input_ids"]]
            assert row["special_tokens_mask"] == expected_special
            assert tokenizer.pad_token_id not in row["input_ids"]

    # Whole documents are held out, about 10% of the tokens, and no document is in both splits.
    train_markers, validation_markers = _markers(train, tokenizer), _markers(validation, tokenizer)
    assert validation_markers and not train_markers & validation_markers
    assert 0.05 < validation.num_rows / (train.num_rows + validation.num_rows) < 0.2

    # Documents are joined with [SEP]: some block has a [SEP] inside it.
    assert any(tokenizer.sep_token_id in row[1:-1] for row in train["input_ids"])

    again_train, again_validation = data.pack_for_mlm(documents, tokenizer, 32, validation_fraction=0.1)
    assert again_train["input_ids"] == train["input_ids"]
    assert again_validation["input_ids"] == validation["input_ids"]
    _, other_validation = data.pack_for_mlm(documents, tokenizer, 32, validation_fraction=0.1, seed=7)
    assert _markers(other_validation, tokenizer) != validation_markers


def test_pack_for_mlm_with_collator_never_masks_special_tokens(marked):
    import torch
    from transformers import DataCollatorForLanguageModeling

    documents, tokenizer = marked
    train, _ = data.pack_for_mlm(documents, tokenizer, max_seq_length=24)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.5, seed=0)
    batch = collator([train[index] for index in range(train.num_rows)])
    assert batch["input_ids"].shape == (train.num_rows, 24)
    special = torch.tensor(train["special_tokens_mask"], dtype=torch.bool)
    assert (batch["labels"][special] == -100).all()
    assert (batch["labels"][~special] != -100).any()


def test_pack_for_mlm_with_separate_validation_documents(marked):
    documents, tokenizer = marked
    train, validation = data.pack_for_mlm(documents[:30], tokenizer, 32, validation_documents=documents[30:])
    assert _markers(train, tokenizer) == {f"marker{index}" for index in range(30)}
    assert _markers(validation, tokenizer) <= {f"marker{index}" for index in range(30, 40)}


def test_pack_for_mlm_errors(marked):
    documents, tokenizer = marked
    with pytest.raises(ValueError, match="too small for max_seq_length=4096"):
        data.pack_for_mlm(documents, tokenizer, max_seq_length=4096)
    with pytest.raises(ValueError, match="single document"):
        data.pack_for_mlm([sum(documents, [])], tokenizer, max_seq_length=32)
    with pytest.raises(ValueError, match="empty"):
        data.pack_for_mlm([[], [" "]], tokenizer, max_seq_length=32)
    with pytest.raises(ValueError, match="at least 3"):
        data.pack_for_mlm(documents, tokenizer, max_seq_length=2)
    with pytest.raises(ValueError, match="validation_fraction"):
        data.pack_for_mlm(documents, tokenizer, max_seq_length=32, validation_fraction=1.5)


def test_document_aware_packing_keeps_the_blocks_and_names_each_tokens_document(marked):
    documents, tokenizer = marked
    plain_train, plain_validation = data.pack_for_mlm(documents, tokenizer, 32, validation_fraction=0.1)
    train, validation = data.pack_for_mlm(documents, tokenizer, 32, validation_fraction=0.1, document_aware=True)
    assert train.column_names == [*plain_train.column_names, "document_ids"]
    assert train["input_ids"] == plain_train["input_ids"] and validation["input_ids"] == plain_validation["input_ids"]
    sep = tokenizer.sep_token_id
    marker_document = {}
    for row in train:
        ids, owners = row["input_ids"], row["document_ids"]
        assert owners == sorted(owners)  # documents follow each other in a block
        assert owners[0] == owners[1] and owners[-1] == owners[-2]  # [CLS] and the last [SEP] join their neighbour
        for position in range(1, len(ids) - 1):
            if owners[position + 1] != owners[position]:
                assert ids[position] == sep  # a document ends with the [SEP] that separates it from the next
        for token, owner in zip(tokenizer.convert_ids_to_tokens(ids), owners):
            if token.startswith("marker"):
                assert marker_document.setdefault(token, owner) == owner  # one marker, one document, across blocks
    assert len(set(marker_document.values())) == len(marker_document)


def test_document_ids_of_blocks_from_the_body_owners():
    body = [[0, 0, 0, 1], [1, 1, 2, 3]]
    assert data.packing.document_ids_of_blocks(body).tolist() == [[0, 0, 0, 0, 1, 1], [1, 1, 1, 2, 3, 3]]

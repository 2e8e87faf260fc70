"""hf_posenc.data.streaming: blocks read, tokenized and packed on the fly, one part of the stream per process."""

from pathlib import Path

import pytest

from hf_posenc import data
from hf_posenc.data.streaming import streaming_mlm_datasets


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """60 documents whose text differs (a number in every line), so that blocks of different documents differ."""
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    documents = [
        "\n".join(f"document {index} line {line} tells about the {index * 7 + line} river" for line in range(4))
        for index in range(60)
    ]
    path.write_text("\n\n".join(documents) + "\n")
    return path


def rows(dataset) -> list[tuple]:
    return [tuple(int(token) for token in row["input_ids"]) for row in dataset]


@pytest.mark.parametrize("files", [1, 2])
def test_two_ranks_stream_disjoint_blocks(corpus, tmp_path, files):
    """One file: every other document per rank; two files: one file per rank (split_dataset_by_node)."""
    tokenizer = data.train_wordpiece_tokenizer(data.read_documents(corpus), vocab_size=100)
    text = corpus.read_text().split("\n\n")
    paths = []
    for index in range(files):
        path = tmp_path / f"part{index}.txt"
        path.write_text("\n\n".join(text[index::files]))
        paths.append(path)
    streamed = {
        rank: streaming_mlm_datasets(
            train_files=paths, tokenizer=tokenizer, max_seq_length=16, validation_documents=5, rank=rank, world_size=2
        )
        for rank in (0, 1)
    }
    blocks = {rank: rows(train) for rank, (train, _) in streamed.items()}
    assert blocks[0] and blocks[1]
    assert not set(blocks[0]) & set(blocks[1])
    assert all(len(block) == 16 and block[0] == tokenizer.cls_token_id for block in blocks[0] + blocks[1])
    validation = rows(streamed[0][1])
    assert validation == rows(streamed[1][1]) and not set(validation) & (set(blocks[0]) | set(blocks[1]))


def test_streamed_blocks_are_those_of_the_prepared_pipeline_when_one_batch_holds_the_corpus(corpus, tmp_path):
    tokenizer = data.train_wordpiece_tokenizer(data.read_documents(corpus), vocab_size=100)
    validation_file = tmp_path / "validation.txt"
    validation_file.write_text("a short validation document about the river and the sea\n" * 20)
    train, _ = streaming_mlm_datasets(
        train_files=corpus, tokenizer=tokenizer, max_seq_length=16, validation_files=validation_file
    )
    prepared, _ = data.prepare_mlm_datasets(
        train_files=corpus,
        validation_files=validation_file,
        tokenizer=tokenizer,
        max_seq_length=16,
        cache_folder=tmp_path / "prepared",
    )
    assert sorted(rows(train)) == sorted(rows(prepared))  # the same blocks, in shuffled order


def test_a_validation_split_without_a_block_is_refused(corpus):
    tokenizer = data.train_wordpiece_tokenizer(data.read_documents(corpus), vocab_size=100)
    with pytest.raises(ValueError, match="raise --streaming_validation_documents"):
        streaming_mlm_datasets(train_files=corpus, tokenizer=tokenizer, max_seq_length=512, validation_documents=1)


def test_a_training_stream_without_a_block_is_refused(corpus):
    tokenizer = data.train_wordpiece_tokenizer(data.read_documents(corpus), vocab_size=100)
    with pytest.raises(ValueError, match="The training stream after the first 60 documents holds fewer tokens"):
        streaming_mlm_datasets(train_files=corpus, tokenizer=tokenizer, max_seq_length=16, validation_documents=60)

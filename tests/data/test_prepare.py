"""The on-disk pretraining pipeline (hf_posenc.data.prepare): the same blocks as the in-memory path, the cache, a
user folder, and several processes preparing once."""

from __future__ import annotations

import multiprocessing
import os
import random

import numpy as np
import pytest
from conftest import SENTENCES

from hf_posenc import data
from hf_posenc.data import prepare


def _corpus_documents(count: int = 60) -> list[list[str]]:
    # Documents of varied length, each a few shuffled sentences, so that blocks cross document boundaries.
    generator = random.Random(0)
    return [
        [generator.choice(SENTENCES) for _ in range(1 + index % 4)] + [f"document {index} ends here"]
        for index in range(count)
    ]


@pytest.fixture
def corpus(tmp_path):
    return data.write_documents(_corpus_documents(), tmp_path / "corpus.txt")


def _arrays(dataset) -> np.ndarray:
    return np.concatenate(list(prepare.iter_blocks(dataset)))


def test_blocks_equal_the_in_memory_path_byte_for_byte(corpus, tmp_path, tiny_tokenizer):
    documents = data.read_documents(corpus)
    for seed in (0, 7):
        old_train, old_validation = data.pack_for_mlm(documents, tiny_tokenizer, 16, 0.1, seed=seed)
        train, validation = data.prepare_mlm_datasets(
            train_files=corpus,
            tokenizer=tiny_tokenizer,
            max_seq_length=16,
            validation_fraction=0.1,
            seed=seed,
            cache_folder=tmp_path / "cache",
        )
        # The same whole documents are held out, and the blocks are the same ids in the narrowest dtype.
        assert train.column_names == ["input_ids"]
        assert _arrays(train).dtype == np.uint8  # a vocabulary of 120
        assert np.array_equal(_arrays(train), np.array(old_train["input_ids"]))
        assert np.array_equal(_arrays(validation), np.array(old_validation["input_ids"]))


def test_separate_validation_file_equals_the_in_memory_path(tmp_path, tiny_tokenizer):
    documents = _corpus_documents(80)
    train_file = data.write_documents(documents[:60], tmp_path / "train.txt")
    validation_file = data.write_documents(documents[60:], tmp_path / "validation.txt")
    old_train, old_validation = data.pack_for_mlm(
        documents[:60], tiny_tokenizer, 24, validation_documents=documents[60:]
    )
    train, validation = data.prepare_mlm_datasets(
        train_files=[train_file],
        validation_files=validation_file,
        tokenizer=tiny_tokenizer,
        max_seq_length=24,
        cache_folder=tmp_path / "cache",
    )
    assert np.array_equal(_arrays(train), np.array(old_train["input_ids"]))
    assert np.array_equal(_arrays(validation), np.array(old_validation["input_ids"]))


def test_numpy_shuffle_matches_the_list_shuffle_of_pack_for_mlm():
    # _held_out_documents shuffles an index array where pack_for_mlm shuffled a list: the permutations must agree.
    order = list(range(1000))
    random.Random(42).shuffle(order)
    array = np.arange(1000)
    random.Random(42).shuffle(array)
    assert array.tolist() == order


def test_second_run_reads_the_cache_and_the_key_follows_the_inputs(corpus, tmp_path, tiny_tokenizer):
    arguments = dict(train_files=corpus, tokenizer=tiny_tokenizer, max_seq_length=16, cache_folder=tmp_path / "c")
    first = data.prepare_mlm_data(**arguments)
    second = data.prepare_mlm_data(**arguments)
    assert first.built and not second.built  # no tokenization the second time
    assert second.folder == first.folder and first.folder.parent == tmp_path / "c"
    assert np.array_equal(_arrays(first.datasets()[0]), _arrays(second.datasets()[0]))
    assert (first.folder / "tokenizer" / "tokenizer.json").is_file()  # a copied folder can be trained on

    # Another seed, block length, tokenizer or corpus content: another key, a fresh preparation.
    assert data.prepare_mlm_data(**{**arguments, "seed": 1}).built
    assert data.prepare_mlm_data(**{**arguments, "max_seq_length": 20}).built
    other_tokenizer = data.train_wordpiece_tokenizer([SENTENCES] * 30, vocab_size=100, min_frequency=1)
    assert data.prepare_mlm_data(**{**arguments, "tokenizer": other_tokenizer}).built
    with open(corpus, "a", encoding="utf-8") as handle:
        handle.write("\none more document at the end\n")
    changed = data.prepare_mlm_data(**arguments)
    assert changed.built and changed.folder != first.folder


def test_damaged_or_half_written_cache_is_rebuilt(corpus, tmp_path, tiny_tokenizer):
    arguments = dict(train_files=corpus, tokenizer=tiny_tokenizer, max_seq_length=16, cache_folder=tmp_path / "c")
    prepared = data.prepare_mlm_data(**arguments)
    expected = _arrays(prepared.datasets()[0])

    train_file = prepared.folder / "train.arrow"
    train_file.write_bytes(train_file.read_bytes()[:-100])  # truncated
    again = data.prepare_mlm_data(**arguments)
    assert again.built and np.array_equal(_arrays(again.datasets()[0]), expected)

    (prepared.folder / "prepared.json").unlink()  # killed before the metadata was written
    assert data.prepare_mlm_data(**arguments).built

    (prepared.folder / "prepared.json").write_text("{not json", encoding="utf-8")
    assert data.prepare_mlm_data(**arguments).built

    # A killed preparation leaves a temporary folder: never read, removed by the next preparation of that key.
    stale = prepared.folder.parent / f".{prepared.folder.name}.tmp-killed"
    stale.mkdir()
    (stale / "train.arrow").write_bytes(b"partial")
    assert not data.prepare_mlm_data(**arguments).built
    (prepared.folder / "prepared.json").unlink()
    assert data.prepare_mlm_data(**arguments).built and not stale.exists()


def test_cache_folder_is_private(corpus, tmp_path, tiny_tokenizer, monkeypatch):
    monkeypatch.setenv("HF_POSENC_CACHE", str(tmp_path / "cache"))
    previous = os.umask(0)
    try:
        prepared = data.prepare_mlm_data(train_files=corpus, tokenizer=tiny_tokenizer, max_seq_length=16)
    finally:
        os.umask(previous)
    assert prepared.folder.parent == tmp_path / "cache" / "prepared"
    for folder in (prepared.folder.parent, prepared.folder):
        assert folder.stat().st_mode & 0o077 == 0, folder


def test_output_folder_is_written_once_and_read_back(corpus, tmp_path, tiny_tokenizer):
    folder = tmp_path / "prepared-for-elsewhere"
    arguments = dict(train_files=corpus, tokenizer=tiny_tokenizer, max_seq_length=16, output_folder=folder)
    assert data.prepare_mlm_data(**arguments).built
    assert not data.prepare_mlm_data(**arguments).built
    train, validation = data.load_prepared_datasets(folder, tokenizer=tiny_tokenizer)
    reference_train, _ = data.prepare_mlm_datasets(**{**arguments, "output_folder": None, "cache_folder": tmp_path})
    assert np.array_equal(_arrays(train), _arrays(reference_train))
    assert validation.num_rows >= 1

    with pytest.raises(FileExistsError, match="other files, tokenizer or settings"):
        data.prepare_mlm_data(**{**arguments, "max_seq_length": 20})
    foreign = tmp_path / "my-notes"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a prepared corpus"):
        data.prepare_mlm_data(**{**arguments, "output_folder": foreign})
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "mine"


def _prepare_in_a_process(corpus, cache, queue):
    from hf_posenc import data

    tokenizer = data.train_wordpiece_tokenizer([SENTENCES] * 30, vocab_size=120, min_frequency=1)
    prepared = data.prepare_mlm_data(train_files=corpus, tokenizer=tokenizer, max_seq_length=16, cache_folder=cache)
    queue.put((prepared.built, str(prepared.folder)))


def test_two_processes_prepare_once(corpus, tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_prepare_in_a_process, args=(corpus, tmp_path / "cache", queue)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(built for built, _ in results) == [False, True]  # one tokenized, the other read its result
    assert len({folder for _, folder in results}) == 1


def _starts_of_documents(document_ids: np.ndarray) -> np.ndarray:
    # Where a new document starts in each block: what the model reads from document_ids (their values may differ).
    return np.concatenate([np.ones((len(document_ids), 1), bool), document_ids[:, 1:] != document_ids[:, :-1]], 1)


def test_document_aware_preparation_stores_each_tokens_document_as_the_in_memory_path(
    corpus, tmp_path, tiny_tokenizer, monkeypatch
):
    monkeypatch.setattr(prepare, "_ROWS_PER_PACKING_BATCH", 7)  # documents and blocks span the packer's batches
    documents = data.read_documents(corpus)
    arguments = dict(train_files=corpus, tokenizer=tiny_tokenizer, max_seq_length=16, validation_fraction=0.1)
    plain = data.prepare_mlm_data(**arguments, cache_folder=tmp_path / "cache")
    aware = data.prepare_mlm_data(**arguments, cache_folder=tmp_path / "cache", document_aware=True)
    # Another key, so a plain cache is never read as document-aware (nor the other way round).
    assert aware.built and aware.folder != plain.folder
    assert aware.metadata["recipe"]["document_ids"] is True and "document_ids" not in plain.metadata["recipe"]
    assert not data.prepare_mlm_data(**arguments, cache_folder=tmp_path / "cache", document_aware=True).built

    memory_splits = data.pack_for_mlm(documents, tiny_tokenizer, 16, 0.1, document_aware=True)
    for split, plain_split, memory in zip(aware.datasets(), plain.datasets(), memory_splits):
        assert split.column_names == ["input_ids", "document_ids"]
        assert np.array_equal(_arrays(split), _arrays(plain_split))  # the same blocks
        owners = np.array(split["document_ids"])
        assert owners.dtype == np.int32 or owners.dtype == np.int64
        assert np.array_equal(_starts_of_documents(owners), _starts_of_documents(np.array(memory["document_ids"])))
        assert _starts_of_documents(owners)[:, 1:].any()  # blocks do cross document boundaries


def test_the_cache_key_depends_on_document_awareness_only_when_it_is_on(corpus, tiny_tokenizer):
    settings = dict(max_seq_length=16, validation_fraction=0.1, seed=0)
    plain_key, plain_recipe = prepare.prepared_cache_key([corpus], None, tiny_tokenizer, **settings)
    off_key, _ = prepare.prepared_cache_key([corpus], None, tiny_tokenizer, **settings, document_aware=False)
    aware_key, _ = prepare.prepared_cache_key([corpus], None, tiny_tokenizer, **settings, document_aware=True)
    assert plain_key == off_key != aware_key
    assert "document_ids" not in plain_recipe  # caches prepared before the option keep their keys

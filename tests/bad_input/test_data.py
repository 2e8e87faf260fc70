"""Bad input to the data pipeline (issues 11 and 12): every case gives one clear error that names the problem and the
fix, and nothing half-written is left behind."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SENTENCES

from hf_posenc import data

TESTS = Path(__file__).resolve().parents[1]


def _prepare(train_file, tokenizer, tmp_path, **extra):
    return data.prepare_mlm_data(
        train_files=train_file, tokenizer=tokenizer, max_seq_length=16, cache_folder=tmp_path / "cache", **extra
    )


@pytest.fixture
def good_corpus(tmp_path):
    return data.write_documents([SENTENCES * 2] * 20, tmp_path / "good.txt")


def test_empty_and_blank_files(tmp_path, tiny_tokenizer):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.txt is empty; give a file with text"):
        _prepare(empty, tiny_tokenizer, tmp_path)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="contain.* no text, only blank lines"):
        _prepare(blank, tiny_tokenizer, tmp_path)
    with pytest.raises(ValueError, match="is empty"):
        data.sample_lines(empty)
    assert not [path for path in (tmp_path / "cache").iterdir() if not path.name.endswith(".lock")]


def test_binary_file(tmp_path, tiny_tokenizer):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ValueError, match=r"model\.bin looks binary .*give a text file"):
        _prepare(binary, tiny_tokenizer, tmp_path)
    late_nul = tmp_path / "late.txt"  # a NUL byte after the first 8 KiB, found while reading
    late_nul.write_bytes(b"a normal line\n" * 1000 + b"bad \x00 line\n")
    with pytest.raises(ValueError, match=r"late\.txt, line 1001: holds a NUL byte"):
        _prepare(late_nul, tiny_tokenizer, tmp_path)


def test_non_utf8_file_names_the_line(tmp_path, tiny_tokenizer):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("first line\nsecond line\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt, line 3: not UTF-8 text .*convert the file to UTF-8"):
        _prepare(latin1, tiny_tokenizer, tmp_path)


def test_folder_or_missing_file_given_as_a_file(tmp_path, tiny_tokenizer, good_corpus):
    with pytest.raises(FileNotFoundError, match="is a folder; pass the text file"):
        _prepare(tmp_path, tiny_tokenizer, tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.txt does not exist"):
        _prepare(tmp_path / "missing.txt", tiny_tokenizer, tmp_path)
    with pytest.raises(FileNotFoundError, match="validation file .* is a folder"):
        _prepare(good_corpus, tiny_tokenizer, tmp_path, validation_files=tmp_path)


def test_huge_line_without_newline_is_refused_without_reading_it(tmp_path, tiny_tokenizer):
    huge = tmp_path / "one-line.txt"
    with open(huge, "wb") as handle:
        handle.write(b"short first line\n")
        for _ in range(48):
            handle.write(b"word " * 20_000)  # 4.8 MB with no newline
    with pytest.raises(ValueError, match=r"one-line\.txt, line 2: longer than 1,048,576 bytes without a newline"):
        _prepare(huge, tiny_tokenizer, tmp_path)
    with pytest.raises(ValueError, match="line 2: longer than"):
        data.sample_lines(huge)


def test_corpus_too_small_for_one_block(tmp_path, tiny_tokenizer):
    small = data.write_documents([["a cat"], ["a dog"]], tmp_path / "small.txt")
    with pytest.raises(ValueError, match="too small for max_seq_length=16.*smaller max_seq_length"):
        _prepare(small, tiny_tokenizer, tmp_path)
    single = data.write_documents([SENTENCES * 5], tmp_path / "single.txt")
    with pytest.raises(ValueError, match="single document.*--validation_file"):
        _prepare(single, tiny_tokenizer, tmp_path)
    assert not [path for path in (tmp_path / "cache").iterdir() if not path.name.endswith(".lock")]


def test_bad_arguments(tmp_path, tiny_tokenizer, good_corpus):
    with pytest.raises(ValueError, match="at least 3"):
        data.prepare_mlm_data(train_files=good_corpus, tokenizer=tiny_tokenizer, max_seq_length=2)
    with pytest.raises(ValueError, match="validation_fraction"):
        _prepare(good_corpus, tiny_tokenizer, tmp_path, validation_fraction=0.0)


def test_hub_dataset_without_the_text_column(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"body": "Some text here."}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no column 'text'; its columns are \['body'\].*--text_column"):
        data.load_hub_text_dataset("json", data_files=str(rows))


def test_prepared_folder_of_another_tokenizer_is_refused(tmp_path, tiny_tokenizer, good_corpus):
    folder = tmp_path / "prepared"
    _prepare(good_corpus, tiny_tokenizer, tmp_path, output_folder=folder)
    other = data.train_wordpiece_tokenizer([SENTENCES] * 30, vocab_size=100, min_frequency=1)
    with pytest.raises(ValueError, match="prepared with another tokenizer"):
        data.load_prepared_datasets(folder, tokenizer=other)
    # In the cache, the key protects it: another tokenizer gets its own folder and never reads these ids.
    first = _prepare(good_corpus, tiny_tokenizer, tmp_path)
    second = _prepare(good_corpus, other, tmp_path)
    assert second.built and second.folder != first.folder


def test_half_written_prepared_folder_is_refused(tmp_path, tiny_tokenizer, good_corpus):
    folder = tmp_path / "prepared"
    _prepare(good_corpus, tiny_tokenizer, tmp_path, output_folder=folder)
    (folder / "validation.arrow").unlink()
    with pytest.raises(ValueError, match="not a complete prepared corpus .*validation.arrow is missing"):
        data.load_prepared_datasets(folder)
    with pytest.raises(ValueError, match="prepared.json"):
        data.load_prepared_datasets(tmp_path)


def test_disk_full_during_preparation_leaves_nothing(tmp_path):
    """A real write failure: the child process may write files of at most 100 kB (RLIMIT_FSIZE), as on a full disk."""
    corpus = data.write_documents([SENTENCES * 3] * 300, tmp_path / "corpus.txt")  # 200 kB of text
    cache = tmp_path / "cache"
    script = f"""
import resource, signal, sys
sys.path.insert(0, {str(TESTS)!r})
from conftest import SENTENCES
from hf_posenc import data
tokenizer = data.train_wordpiece_tokenizer([SENTENCES] * 30, vocab_size=120, min_frequency=1)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
try:
    data.prepare_mlm_data(train_files={str(corpus)!r}, tokenizer=tokenizer, max_seq_length=16, cache_folder={str(cache)!r})
except RuntimeError as error:
    print(error)
    sys.exit(3)
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 3, completed.stderr[-2000:]
    assert "The disk filled up while preparing the corpus" in completed.stdout
    assert "Free space there or point the preparation elsewhere" in completed.stdout
    assert [path.name for path in cache.iterdir() if not path.name.endswith(".lock")] == []


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(bytes(range(256)) * 4, id="binary"),
        pytest.param(gzip.compress(b'{"gold_label": "entailment"}\n' * 50), id="gzip"),
    ],
)
def test_an_snli_file_that_is_binary_is_named(tmp_path, content):
    snli = tmp_path / "snli_1.0_test.jsonl"
    snli.write_bytes(content)
    with pytest.raises(ValueError, match=r"snli_1.0_test.jsonl is not UTF-8 text \(byte \d+: .*\); give the official"):
        data.load_snli("test", path=snli)
    with pytest.raises(ValueError, match="snli_1.0_test.jsonl is not UTF-8 text"):
        data.load_snli("test", path=tmp_path)  # the folder holding it

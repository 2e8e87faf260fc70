"""The sentences of SNLI with their Stanford parses: the text of the built-in word-order tasks (`pos`,
`bigram_shift`, `tree_depth`).

A sentence is what the tasks give the model: the words of its parse, joined by single spaces. Every sentence of a
split counts once as the model reads it (`hf_posenc.tasks.dedup.model_view`: "A man sleeps." and "a man sleeps ."
are one sentence; premises also repeat across pairs), the first of its premises and hypotheses in file order kept.
``test`` holds those of the official test set (12,955 of its 12,961 distinct strings); ``train`` those of SNLI's train
subset that the model does not read as a test sentence, so no test sentence is trained on whatever its case, accents
or spacing (119,607 of its 120,777 distinct strings: 745 are test sentences as typed, 109 more as the model reads
them, 316 repeat another train sentence). A task holds its development split out of ``train``, whose sentences are
all distinct, so none is also trained on. A train file of the user's own (``path``) is only made distinct.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..data.snli import load_snli
from .base import HeldOut, Task
from .dedup import drop_seen, model_views
from .parse import ParseNode, parse_tree

__all__ = ["ParsedSentence", "snli_sentence_task", "snli_sentences"]


@dataclass(frozen=True)
class ParsedSentence:
    """A sentence as SNLI's parser tokenised it (``words``) with the part-of-speech tag of each word and its
    constituency tree."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    tree: ParseNode


def _unique_parses(split: str, path: str | None) -> dict[str, str]:
    """``{sentence: parse}`` over both sides of the split's pairs, first occurrence first."""
    parses: dict[str, str] = {}
    for pair in load_snli(split, path=path):
        for side in ("sentence1", "sentence2"):
            parse = pair.get(f"{side}_parse")
            if parse:
                parses.setdefault(pair[side], parse)
    return parses


def _words(sentence: ParsedSentence) -> tuple[str, ...]:
    return sentence.words


@lru_cache(maxsize=4)
def _cached_sentences(split: str, path: str | None) -> tuple[ParsedSentence, ...]:
    sentences = []
    for sentence, parse in _unique_parses(split, path).items():
        tree = parse_tree(parse, where=f"the SNLI {split} sentence {sentence!r}")
        leaves = tree.leaves()
        sentences.append(
            ParsedSentence(tuple(leaf.word for leaf in leaves), tuple(leaf.label for leaf in leaves), tree)
        )
    test_views = set()
    if split == "train" and path is None:
        test_views = set(model_views(item.words for item in _cached_sentences("test", None)))
    return tuple(drop_seen(sentences, _words, test_views))


def snli_sentences(split: str, path: str | os.PathLike | None = None) -> tuple[ParsedSentence, ...]:
    """The distinct parsed sentences of SNLI's ``split`` (train or test), from ``path`` (an snli_1.0_<split>.jsonl
    or its folder) or the built-in copy. Cached in memory: the trees of the 120,000 train sentences take seconds."""
    return _cached_sentences(split, None if path is None else str(Path(path)))


def snli_sentence_task(**declaration) -> Task:
    """A task on SNLI's sentences: trained on train, selected on 10% of it (at most 2,000 sentences) held out with
    seed 0, reported on the sentences of the test set, scored by accuracy. `declaration` gives the rest."""
    return Task(
        splits=("train", "validation", "test"),
        train_split="train",
        report_split="test",
        selection_split="validation",
        held_out=HeldOut("validation", 0.1, seed=0, most=2000),
        main_metric="accuracy",
        **declaration,
    )

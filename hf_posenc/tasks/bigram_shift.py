"""``bigram_shift``: were two adjacent words of the sentence inverted? (SentEval's BShift, Conneau et al. 2018).

Built deterministically from the distinct SNLI sentences (`hf_posenc.tasks.snli_sentences`): the sentences of a
split are shuffled with ``random.Random("bigram_shift 0")``; the first half get two adjacent words inverted (label ``inverted``),
the rest are kept (``original``), so the classes are balanced. The inverted pair is drawn with a generator seeded
by the sentence's text (the same inversion whatever the split holds), among pairs of two different words, never
involving the final punctuation. Words are those of SNLI's parse, joined by single spaces in both classes, so
spacing gives nothing away. Sentences with fewer than two different words before their final punctuation are left
out.

Example: ``A man sleeps on a bench .`` (original) and ``A man on sleeps a bench .`` (inverted).
Splits as for `pos` (no sentence in two splits as the model reads it): ``train`` 117,602 sentences, ``validation``
2,000 held out of train with seed 0, ``test`` 12,954 (reported).
"""

from __future__ import annotations

import os
import random
import zlib

from .base import TaskKind
from .scoring import accuracy_scores
from .snli_sentences import snli_sentence_task, snli_sentences

__all__ = ["BIGRAM_SHIFT", "BIGRAM_SHIFT_LABELS", "invert_bigram", "load_bigram_shift"]

BIGRAM_SHIFT_LABELS = ("original", "inverted")
_FINAL_PUNCTUATION = {".", "!", "?"}


def invert_bigram(words: list[str], rng: random.Random) -> list[str] | None:
    """``words`` with one random pair of adjacent, different words exchanged (the final punctuation stays), or
    None when the sentence has no such pair."""
    end = len(words) - 1 if words and words[-1] in _FINAL_PUNCTUATION else len(words)
    candidates = [index for index in range(end - 1) if words[index] != words[index + 1]]
    if not candidates:
        return None
    index = rng.choice(candidates)
    inverted = list(words)
    inverted[index], inverted[index + 1] = inverted[index + 1], inverted[index]
    return inverted


def load_bigram_shift(split: str = "train", path: str | os.PathLike | None = None, seed: int = 0) -> list[dict]:
    """``{"sentence", "label"}`` examples of SNLI's ``split`` (train or test), half of them inverted."""
    sentences = [list(item.words) for item in snli_sentences(split, path)]
    sentences = [words for words in sentences if invert_bigram(words, random.Random(0)) is not None]
    order = list(range(len(sentences)))
    random.Random(f"bigram_shift {seed}").shuffle(order)
    inverted = set(order[: len(order) // 2])
    examples = []
    for index, words in enumerate(sentences):
        if index in inverted:
            rng = random.Random(zlib.crc32(" ".join(words).encode("utf-8")) ^ seed)
            words = invert_bigram(words, rng)
        examples.append({"sentence": " ".join(words), "label": BIGRAM_SHIFT_LABELS[index in inverted]})
    return examples


BIGRAM_SHIFT = snli_sentence_task(
    name="bigram_shift",
    kind=TaskKind.SINGLE_SENTENCE,
    text_columns=("sentence",),
    label_column="label",
    label_names=BIGRAM_SHIFT_LABELS,
    loader=load_bigram_shift,
    metric=accuracy_scores,
    description="SNLI sentences with two adjacent words inverted or not, SentEval-style (accuracy)",
)

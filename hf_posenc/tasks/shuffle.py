"""Word-order shuffles of a sentence: inside consecutive windows of n words, or over the whole sentence.

The final punctuation is held apart and put back last, so that a shuffle moves words, not the full stop.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

__all__ = [
    "SHUFFLE_WINDOWS",
    "can_reorder",
    "join_words",
    "shuffle_until_changed",
    "shuffle_within_windows",
    "split_words",
]

# The window sizes of the paper's shuffle probes (shuffle-3 .. shuffle-6).
SHUFFLE_WINDOWS = (3, 4, 5, 6)

# How many times a shuffle is redrawn when it happens to reproduce the original order.
_MAX_SHUFFLE_DRAWS = 100

_FINAL_PUNCTUATION = re.compile(r"[.!?]+$")


def split_words(sentence: str) -> tuple[list[str], str]:
    """Split a sentence into its whitespace-separated words and its final punctuation.

    The final punctuation is the run of ``.``, ``!`` or ``?`` that ends the sentence, whether attached to
    the last word ("ceiling.") or standing alone ("ceiling ."). It is returned as typed (with a leading space
    when it stood alone), so that ``" ".join(words) + final`` gives back the sentence with normalised spaces.
    """
    words = sentence.split()
    final = ""
    if words:
        match = _FINAL_PUNCTUATION.search(words[-1])
        if match:
            if match.start() == 0:
                final = " " + words.pop()
            else:
                final = match.group()
                words[-1] = words[-1][: match.start()]
    return words, final


def join_words(words: Sequence[str], final: str) -> str:
    """Inverse of `split_words`."""
    return " ".join(words) + final


def shuffle_within_windows(words: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """Cut ``words`` into consecutive windows of ``n`` words and shuffle each window in place.

    The last window holds the remaining ``len(words) % n`` words when the length is not a multiple of n.
    Words never leave their window. One draw; the result may equal the input.
    """
    if n < 1:
        raise ValueError(f"window size must be at least 1, got {n}")
    shuffled: list[str] = []
    for start in range(0, len(words), n):
        window = list(words[start : start + n])
        rng.shuffle(window)
        shuffled.extend(window)
    return shuffled


def can_reorder(words: Sequence[str], n: int) -> bool:
    """True when some window of n words holds two different words, so a shuffle can change the order."""
    return any(len(set(words[start : start + n])) > 1 for start in range(0, len(words), n))


def shuffle_until_changed(words: list[str], n: int, rng: random.Random) -> list[str] | None:
    """Shuffle inside windows of n, redrawing when the draw reproduces the original order.

    Returns None when no order other than the original exists (one word, or windows of identical words).
    """
    if not can_reorder(words, n):
        return None
    for _ in range(_MAX_SHUFFLE_DRAWS):
        shuffled = shuffle_within_windows(words, n, rng)
        if shuffled != words:
            return shuffled
    return None  # astronomically unlikely: 100 identity draws in a row

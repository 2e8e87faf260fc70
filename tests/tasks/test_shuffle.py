"""Window shuffles (hf_posenc.tasks.shuffle)."""

import random
from collections import Counter

import pytest

from hf_posenc.tasks.shuffle import shuffle_within_windows, split_words


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 50])
def test_shuffle_keeps_words_and_moves_them_only_inside_windows(n):
    words = "a man in a red shirt is playing the big brown guitar on the stage tonight".split()
    rng = random.Random(n)
    for _ in range(20):
        shuffled = shuffle_within_windows(words, n, rng)
        assert Counter(shuffled) == Counter(words)
        for start in range(0, len(words), n):
            assert Counter(shuffled[start : start + n]) == Counter(words[start : start + n])
    if n == 1:
        assert shuffle_within_windows(words, 1, rng) == words
    with pytest.raises(ValueError):
        shuffle_within_windows(words, 0, rng)


def test_split_words_holds_final_punctuation_apart():
    assert split_words("The church has cracks in the ceiling.") == (
        ["The", "church", "has", "cracks", "in", "the", "ceiling"],
        ".",
    )
    assert split_words("Is he here ?") == (["Is", "he", "here"], " ?")
    assert split_words("A dog runs") == (["A", "dog", "runs"], "")

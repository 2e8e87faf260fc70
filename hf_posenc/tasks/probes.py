"""The word-order probe sets built from SNLI test pairs, and their files.

* ``shuffle-n`` (n = 3..6): the hypothesis's words are shuffled inside consecutive windows of n words; the final
  punctuation stays last; the label is kept.
* ``random``: all words of the hypothesis are shuffled; the label is kept.
* ``role-swap``: for entailment pairs, the subject and the object of the hypothesis's main verb are exchanged; the
  pair is labelled not entailed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

from ..data.snli import SNLI_LABELS
from ..storage import atomic_output
from .parse import parse_tree
from .role_swap import find_roles, role_swap
from .shuffle import SHUFFLE_WINDOWS, join_words, shuffle_until_changed, split_words

__all__ = ["NOT_ENTAILMENT", "PROBE_NAMES", "STILL_ENTAILMENT", "build_probes", "load_probes", "save_probes"]

# The probes in the order the paper's table shows them.
PROBE_NAMES = tuple(f"shuffle-{n}" for n in SHUFFLE_WINDOWS) + ("random", "role-swap")

# The label a role-swapped pair gets in the probe files. SNLI is 3-way, but a swapped pair is not
# reliably neutral or contradiction ("A dog bites a man" given "A man bites a dog"), so the probe only
# claims what the paper claims: it is not entailed. Any answer other than "entailment" counts as right.
NOT_ENTAILMENT = "not_entailment"
# The result key of the share of role-swapped pairs still answered "entailment".
STILL_ENTAILMENT = "still_entailment"

# What a pair needs for every probe: the hypothesis and its parse are probed, the premise and label are kept.
_REQUIRED_FIELDS = ("sentence1", "sentence2", "gold_label", "sentence2_parse")


def pair_key(pair: dict, index: int) -> str:
    """How a probe record points back at its test pair: the pairID, or the pair's position when it has none."""
    return str(pair.get("pairID", index))


def _check_pairs(pairs: list) -> None:
    """Refuse pairs the probes cannot score: a missing field, a label other than SNLI's, or a pairID seen twice
    (the scores compare each probed pair with its original by pairID)."""
    seen: set[str] = set()
    for index, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            raise ValueError(
                f"pair {index} is a {type(pair).__name__}, not a dict; pass SNLI pairs as load_snli() returns them."
            )
        name = f"pair {pair.get('pairID', index)}"
        missing = [field for field in _REQUIRED_FIELDS if not isinstance(pair.get(field), str)]
        if missing:
            raise ValueError(
                f"{name} lacks the text field(s) {', '.join(missing)}; the probes need {', '.join(_REQUIRED_FIELDS)} "
                "in every pair (as in snli_1.0_test.jsonl)."
            )
        if pair["gold_label"] not in SNLI_LABELS:
            raise ValueError(
                f"{name} has gold_label {pair['gold_label']!r}; the probes need one of {', '.join(SNLI_LABELS)} "
                "(drop unlabelled pairs, as load_snli() does)."
            )
        key = pair_key(pair, index)
        if key in seen:
            raise ValueError(f"{name} appears twice; give every pair its own pairID.")
        seen.add(key)


def _probe_record(pair: dict, index: int, probe: str, hypothesis: str, label: str) -> dict:
    return {
        "probe": probe,
        "pairID": pair_key(pair, index),
        "sentence1": pair["sentence1"],
        "sentence2": hypothesis,
        "gold_label": label,
        "original_sentence2": pair["sentence2"],
        "original_label": pair["gold_label"],
    }


def build_probes(pairs: Iterable[dict], seed: int = 0) -> dict[str, list[dict]]:
    """Build every probe from SNLI pairs (dicts with sentence1, sentence2, gold_label, sentence2_parse).

    Returns ``{probe name: [record, ...]}`` for the names in `PROBE_NAMES`. Each record holds pairID,
    sentence1, the probed sentence2, gold_label (the original label, or "not_entailment" for role-swap),
    original_sentence2 and original_label.

    Shuffles act on the whitespace words of the hypothesis, with the final punctuation held apart and put
    back last. A draw that reproduces the original order is redrawn, so every probed hypothesis differs
    from its original; a hypothesis that cannot be reordered (one word, or identical words) is left out of
    that probe. Role-swap uses only entailment pairs whose parse gives a swap (see `role_swap`).

    Each probe draws from its own generator seeded by ``(seed, probe name)``, so the same pairs and seed
    always give the same probes, and one probe does not depend on another.
    """
    pairs = list(pairs)
    _check_pairs(pairs)
    probes: dict[str, list[dict]] = {name: [] for name in PROBE_NAMES}
    generators = {name: random.Random(f"{seed}/{name}") for name in PROBE_NAMES}
    for index, pair in enumerate(pairs):
        words, final = split_words(pair["sentence2"])
        for n in SHUFFLE_WINDOWS:
            name = f"shuffle-{n}"
            shuffled = shuffle_until_changed(words, n, generators[name])
            if shuffled is not None:
                probes[name].append(_probe_record(pair, index, name, join_words(shuffled, final), pair["gold_label"]))
        shuffled = shuffle_until_changed(words, max(len(words), 1), generators["random"])
        if shuffled is not None:
            probes["random"].append(
                _probe_record(pair, index, "random", join_words(shuffled, final), pair["gold_label"])
            )

        if pair["gold_label"] == "entailment":
            where = f"pair {pair_key(pair, index)}"
            tree = parse_tree(pair["sentence2_parse"], where)
            swapped = role_swap(tree, pair["sentence2"], where)
            if swapped is not None:
                roles = find_roles(tree)
                assert roles is not None  # role_swap found them a moment ago
                all_words = tree.words()
                record = _probe_record(pair, index, "role-swap", swapped, NOT_ENTAILMENT)
                record["subject"] = " ".join(all_words[roles.subject_span[0] : roles.subject_span[1] + 1])
                record["object"] = " ".join(all_words[roles.object_span[0] : roles.object_span[1] + 1])
                probes["role-swap"].append(record)
    return probes


def save_probes(probes: dict[str, list[dict]], out_dir: str | Path) -> dict[str, Path]:
    """Write each probe to ``out_dir/<probe name>.jsonl`` (one record a line, keys sorted, UTF-8).

    Returns ``{probe name: path}``. The same probes always give byte-identical files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, records in probes.items():
        path = out_dir / f"{name}.jsonl"
        with atomic_output(path, encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        written[name] = path
    return written


def load_probes(in_dir: str | Path) -> dict[str, list[dict]]:
    """Read probes written by `save_probes` (every ``*.jsonl`` in the folder)."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"probe folder {in_dir} does not exist; write it with save_probes()")
    probes: dict[str, list[dict]] = {}
    for path in sorted(in_dir.glob("*.jsonl")):
        records = []
        with path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{line_number}: not valid JSON ({error.msg})") from None
        probes[path.stem] = records
    return probes

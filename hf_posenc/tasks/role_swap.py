"""Role swap: exchange the subject and the object of a parsed sentence's main verb.

"A man is holding a banana." becomes "A banana is holding a man.": the same words, another meaning. The roles are
read from the Stanford parse; the raw sentence's spelling and spacing are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .parse import ParseNode, parse_tree

__all__ = ["Roles", "find_roles", "role_swap"]

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


def _object_of_head_verb(verb_phrase: ParseNode) -> ParseNode | None:
    """Follow a chain of verb phrases to the main verb and return its first NP complement.

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
            return child
    return None


def _has_nominal_head(phrase: ParseNode) -> bool:
    """True when the noun phrase holds a noun, pronoun or number, i.e. it names something."""
    return any(leaf.label in _NOMINAL_TAGS for leaf in phrase.leaves())


def find_roles(tree: ParseNode) -> Roles | None:
    """Find the subject NP and the object NP of the main verb, or None when the parse lacks either.

    Subject: the first NP child of the main S (the S under ROOT) that has a VP after it. Object: the first
    NP complement of that VP's head verb (see `_object_of_head_verb`). Skipped (None): fragments without
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
    object_phrase = _object_of_head_verb(verb_phrase)
    if object_phrase is None:
        return None
    if " ".join(object_phrase.words()).lower() in _ANAPHORIC_OBJECTS:
        return None
    if not (_has_nominal_head(subject) and _has_nominal_head(object_phrase)):
        return None  # a misparse such as (NP (DT A)) is not a phrase worth swapping
    return Roles(subject=subject, object=object_phrase)


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

"""Reading Stanford constituency parses, as SNLI ships them (``sentence1_parse``, ``sentence2_parse``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ParseNode", "parse_tree"]


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

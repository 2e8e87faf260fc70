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
# Stanford parses of real sentences are a few dozen levels deep (SNLI 1.0: 28 at most). The reader and every walk
# over a tree (leaves, repr, depth, role swaps) recurse once or more per level, so a deeper parse is refused before
# it exhausts Python's stack.
MAX_PARSE_DEPTH = 100
# An error message quotes this much of a parse: enough to find it, never a whole file's line.
_QUOTED_CHARACTERS = 200


def parse_tree(parse: str, where: str = "parse") -> ParseNode:
    """Read a bracketed Stanford parse such as ``(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps)) (. .)))``.

    ``where`` names the parse in error messages (e.g. ``"pair 2677109430.jpg#1r1n"`` or ``"file.jsonl:12"``).
    Raises ValueError when the brackets do not balance, a node has no label, the text holds more than one tree,
    or the tree is nested more than `MAX_PARSE_DEPTH` levels deep.
    """
    tokens = _PARSE_TOKEN.findall(parse)
    if not tokens:
        raise ValueError(f"empty parse in {where}: expected a bracketed tree such as '(ROOT (S ...))'")
    position = 0
    word_count = 0

    def problem(message: str) -> ValueError:
        quoted = parse if len(parse) <= _QUOTED_CHARACTERS else parse[:_QUOTED_CHARACTERS] + "..."
        return ValueError(f"{message} in {where}: {quoted!r}")

    def read_node(depth: int = 1) -> ParseNode:
        nonlocal position, word_count
        if depth > MAX_PARSE_DEPTH:
            raise problem(
                f"parse nested more than {MAX_PARSE_DEPTH} levels deep (a sentence's parse is a few dozen); "
                "fix or drop this example"
            )
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
                node.children.append(read_node(depth + 1))
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

"""Reading a study spec's text: YAML or JSON into plain values plus the line of every key path, with the two
things a hostile or careless file could do to the reader refused first (aliases that expand a few hundred bytes
into gigabytes, nesting deep enough to exhaust the recursive composer)."""

from __future__ import annotations

import json
from typing import Any


class SpecError(ValueError):
    """A mistake in a study spec; the message names the file, the line and the fix."""


def read_document(text: str, source: str, json_format: bool) -> tuple[Any, dict[tuple, int]]:
    """The values of ``text`` and the 1-based line of each key path (empty for JSON that YAML cannot read)."""
    import yaml

    if json_format:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f"{source}, line {error.lineno}: not valid JSON ({error.msg}); fix the syntax.") from None
        except RecursionError:
            raise SpecError(
                f"{source}: nested more than {MAX_NESTING} levels deep; a study spec is a few levels."
            ) from None
    try:
        _check_structure(text, source)  # before anything builds nodes: aliases and depth are refused from events
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if not json_format:
            values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        if json_format:  # valid JSON that YAML cannot read (rare): no line numbers for later errors
            return values, {}
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpecError(f"{source}{line}: not valid YAML ({problem}); fix the syntax.") from None
    lines: dict[tuple, int] = {}
    _collect_lines(node, (), lines)
    return values, lines


# A spec is about five levels deep; far deeper nesting is a mistake or an attack on the recursive YAML composer.
MAX_NESTING = 64


def _check_structure(text: str, source: str) -> None:
    """Refuse YAML aliases and deep nesting while parsing events, which costs time linear in the text.

    An alias makes one node appear in many places: each alias of an alias multiplies the document, so a few
    hundred bytes ("billion laughs") expand to gigabytes in anything that walks the values (the line walk below,
    json.dumps of the spec). A spec never needs one: write the values out."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise SpecError(
                f"{source}, line {event.start_mark.line + 1}: the YAML alias *{event.anchor} is not accepted in a "
                "study spec (aliases can expand a small file into gigabytes); write the values out instead."
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise SpecError(
                    f"{source}, line {event.start_mark.line + 1}: nested more than {MAX_NESTING} levels deep; a study "
                    "spec is a few levels (see docs/study.md)."
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _collect_lines(node, path: tuple, lines: dict[tuple, int]) -> None:
    import yaml

    if node is None:
        return
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = path + (key.value,)
            _collect_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, path + (index,), lines)

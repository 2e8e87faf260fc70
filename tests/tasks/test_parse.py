"""Reading Stanford parses (hf_posenc.tasks.parse)."""

import pytest
from snli_samples import SNLI_HYPOTHESES

from hf_posenc.tasks.parse import parse_tree


def test_parse_tree_reads_words_labels_and_spans():
    sentence, parse, _ = SNLI_HYPOTHESES["vehicle"]
    tree = parse_tree(parse)
    assert tree.label == "ROOT"
    assert tree.words() == ["A", "vehicle", "is", "crossing", "a", "river", "."]
    clause = tree.children[0]
    assert [child.label for child in clause.children] == ["NP", "VP", "."]
    subject = clause.children[0]
    assert (subject.first, subject.last) == (0, 1)
    assert repr(subject) == "(NP (DT A) (NN vehicle))"


@pytest.mark.parametrize(
    "broken",
    [
        "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps))",  # missing ')'
        "(ROOT (S (NP (DT A) (NN man))) (VP (VBZ sleeps))))",  # extra ')'
        "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sleeps)))) trailing",
        "( (DT A))",
        "",
    ],
)
def test_unbalanced_parse_is_an_error_naming_the_pair(broken):
    with pytest.raises(ValueError, match="pair 12345#r1e"):
        parse_tree(broken, where="pair 12345#r1e")


def test_a_parse_nested_deeper_than_any_sentence_is_refused_not_a_recursion_error():
    depth = 5000
    deep = "(ROOT " + "(NP " * depth + "(NN man)" + ")" * (depth + 1)
    with pytest.raises(ValueError, match=r"nested more than 100 levels deep .* in pair 7#r1e: '\(ROOT \(NP") as error:
        parse_tree(deep, where="pair 7#r1e")
    assert len(str(error.value)) < 500  # the parse is quoted in part, not whole
    deepest_allowed = "(ROOT " + "(NP " * 98 + "(NN man)" + ")" * 99
    tree = parse_tree(deepest_allowed)
    assert tree.words() == ["man"] and "(NN man)" in repr(tree)  # walks over it stay within Python's stack

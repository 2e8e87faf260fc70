"""Subject/object role swaps on real SNLI parses (hf_posenc.tasks.role_swap)."""

import pytest
from snli_samples import SNLI_HYPOTHESES

from hf_posenc.tasks.parse import parse_tree
from hf_posenc.tasks.role_swap import find_roles, role_swap


@pytest.mark.parametrize("key", sorted(SNLI_HYPOTHESES))
def test_role_swap_on_real_snli_parses(key):
    sentence, parse, expected = SNLI_HYPOTHESES[key]
    assert role_swap(parse, sentence) == expected


# The subject and object each swappable hypothesis above should give, as they appear in the sentence.
ROLES = {
    "vehicle": ("A vehicle", "a river"),
    "lady": ("The lady", "a garden"),
    "gymnast": ("A younger gymnast, wearing dark blue and white", "her right leg straight in the air"),
    "female": ("the female", "her hair"),
    "tennis": ("Serina Williams", "tennis"),
    "ocean": ("Men", "the bus"),
}


@pytest.mark.parametrize("key", sorted(ROLES))
def test_role_swap_exchanges_exactly_the_two_phrases(key):
    sentence, parse, _ = SNLI_HYPOTHESES[key]
    subject, object_ = ROLES[key]
    roles = find_roles(parse_tree(parse))
    words = parse_tree(parse).words()
    (s_first, s_last), (o_first, o_last) = roles.subject_span, roles.object_span
    assert "".join(words[s_first : s_last + 1]) == subject.replace(" ", "")
    assert "".join(words[o_first : o_last + 1]) == object_.replace(" ", "")

    s_at = sentence.index(subject)
    o_at = sentence.index(object_, s_at + len(subject))
    exchanged = (
        sentence[:s_at] + object_ + sentence[s_at + len(subject) : o_at] + subject + sentence[o_at + len(object_) :]
    )
    swapped = role_swap(parse, sentence)
    assert swapped.lower() == exchanged.lower()
    # Letter case changes only at the new first word and at the old first word, now moved.
    moved_at = s_at + len(object_) + (o_at - s_at - len(subject))
    assert {i for i, (a, b) in enumerate(zip(swapped, exchanged)) if a != b} <= {0, moved_at}


def test_role_swap_without_raw_sentence_uses_parse_words():
    _, parse, _ = SNLI_HYPOTHESES["gymnast"]
    assert role_swap(parse) == (
        "Her right leg straight in the air, has a younger gymnast, wearing dark blue and white."
    )


def test_role_swap_gives_pronouns_the_case_of_their_new_role():
    parse = "(ROOT (S (NP (DT The) (NN dog)) (VP (VBZ sees) (NP (PRP me))) (. .)))"
    assert role_swap(parse, "The dog sees me.") == "I sees the dog."
    parse = "(ROOT (S (NP (PRP I)) (VP (VBP see) (NP (PRP her))) (. .)))"
    assert role_swap(parse, "I see her.") == "She see me."


def test_role_swap_that_changes_nothing_is_dropped():
    parse = "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ sees) (NP (DT a) (NN man))) (. .)))"
    assert role_swap(parse, "A man sees a man.") is None


def test_reciprocal_object_is_skipped():
    parse = "(ROOT (S (NP (CD Two) (NNS dogs)) (VP (VBP chase) (NP (DT each) (JJ other))) (. .)))"
    assert find_roles(parse_tree(parse)) is None

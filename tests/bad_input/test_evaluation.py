"""Bad input to the evaluation jobs (length extrapolation): clear errors before any model runs."""

import pytest
from conftest import SENTENCES, tiny_config
from transformers import AutoModelForMaskedLM

from hf_posenc.analysis.extrapolation import extrapolate


@pytest.fixture
def rope_folder(tmp_path, tiny_tokenizer):
    AutoModelForMaskedLM.from_config(tiny_config("rope", vocab_size=len(tiny_tokenizer))).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize("lengths", [[2], [128, 1], [0], []])
def test_lengths_below_three_are_refused(rope_folder, lengths):
    with pytest.raises(ValueError, match="at least 3 tokens|at least one sequence length"):
        extrapolate(rope_folder, lengths, [SENTENCES])


def test_text_too_short_for_the_shortest_length_is_refused(rope_folder):
    with pytest.raises(ValueError, match=r"fewer than one block of the shortest length 512; give more text"):
        extrapolate(rope_folder, [512], [SENTENCES[:1]])


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model folder"):
        extrapolate(tmp_path, [16], [SENTENCES])

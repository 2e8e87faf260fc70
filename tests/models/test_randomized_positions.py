"""Randomized positional encodings (Ruoss et al. 2023) as a setting of every encoding that reads positions: each
forward draws the block's positions, sorted and distinct, from 0..N-1; each token then reads its drawn row of the
position table (embed route) or rotation table (rotate route)."""

import pytest
import torch
from conftest import random_ids, tiny_mlm

from hf_posenc.positional_base import randomized_positions
from hf_posenc.training import parse_pretrain_arguments, pretrain

READING_POSITIONS = ["learned", "sinusoidal", "rope"]


def hidden(model, ids):
    return model.base_model(ids).last_hidden_state


@pytest.mark.parametrize("variant", READING_POSITIONS)
def test_a_range_equal_to_the_length_is_the_plain_model(variant):
    # Drawing T distinct positions out of T and sorting them gives 0..T-1: the setting must then change nothing.
    plain = tiny_mlm(variant).eval()
    randomized = tiny_mlm(variant, randomized_positions_range=16).eval()
    randomized.load_state_dict(plain.state_dict())
    ids = random_ids(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(hidden(randomized, ids), hidden(plain, ids))


def test_each_token_reads_the_row_of_its_drawn_position():
    randomized = tiny_mlm("learned", randomized_positions_range=40).eval()
    plain = tiny_mlm("learned").eval()
    plain.load_state_dict(randomized.state_dict())
    positions = randomized_positions(40, 12, training=False, device="cpu")
    assert positions.tolist() == sorted(set(positions.tolist())) and 0 <= positions.min() and positions.max() < 40
    table = plain.base_model.position.position_embeddings.weight
    with torch.no_grad():
        table[:12] = randomized.base_model.position.position_embeddings.weight[positions]
        ids = random_ids(2, 12)
        torch.testing.assert_close(hidden(randomized, ids), hidden(plain, ids))


@pytest.mark.parametrize("variant", READING_POSITIONS)
def test_training_draws_new_positions_and_evaluation_repeats_its_draw(variant):
    model = tiny_mlm(variant, randomized_positions_range=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ids = random_ids(1, 10)
    with torch.no_grad():
        model.train()
        first, second = hidden(model, ids), hidden(model, ids)
        assert not torch.allclose(first, second)
        model.eval()
        torch.testing.assert_close(hidden(model, ids), hidden(model, ids))
    drawn = randomized_positions(40, 10, training=False, device="cpu")
    assert not torch.equal(drawn, torch.arange(10)), "a range of 40 should not draw 0..9"


def test_bad_uses_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="computes from distances"):
        tiny_mlm("alibi", randomized_positions_range=64)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        tiny_mlm("learned", randomized_positions_range=10_000)
    with pytest.raises(ValueError, match="whole number >= 0"):
        tiny_mlm("rope", randomized_positions_range=-1)
    model = tiny_mlm("rope", randomized_positions_range=8)
    with pytest.raises(ValueError, match="at least the longest sequence"):
        model(random_ids(1, 12))
    with pytest.raises(ValueError, match="cannot be combined"):
        model(random_ids(1, 6), document_ids=torch.zeros(1, 6, dtype=torch.long))


def test_pretraining_with_randomized_positions_saves_the_setting(tmp_path):
    from transformers import AutoConfig

    argv = ["--corpus", "stdlib", "--vocab_size", "500", "--max_seq_length", "16", "--variant", "rope",
            "--config_overrides", "hidden_size=32,num_hidden_layers=1,num_attention_heads=4,intermediate_size=64",
            "--randomized_positions_range", "64", "--per_device_train_batch_size", "4", "--max_steps", "3",
            "--eval_strategy", "no", "--save_strategy", "no", "--no_posenc_metrics", "--disable_tqdm", "true",
            "--report_to", "none", "--output_dir", str(tmp_path / "run")]  # fmt: skip
    result = pretrain(**parse_pretrain_arguments(argv))
    assert result.train_steps == 3
    assert AutoConfig.from_pretrained(tmp_path / "run").randomized_positions_range == 64

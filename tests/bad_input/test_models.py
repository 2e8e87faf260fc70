"""Bad input to the models and configs: every case gives a clear error that names the problem and the fix."""

import pytest
import torch
from conftest import ALL, random_ids, tiny_config, tiny_mlm
from transformers import AutoModelForMaskedLM

import hf_posenc


def test_bad_configurations_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown positional-encoding variant 'rotary'.*rope"):
        hf_posenc.create_config("rotary")
    with pytest.raises(ValueError, match="hidden_size=30 is not divisible by num_attention_heads=4"):
        hf_posenc.create_config("learned", hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="head dimension .* = 3 is odd"):
        hf_posenc.create_config("rope", hidden_size=12, num_attention_heads=4)
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"attenuation_strength \(w\) must be a finite number >= 0"):
            hf_posenc.create_config("attenuated", attenuation_strength=bad)
        with pytest.raises(ValueError, match=r"attenuation_symmetry \(s\) must be a finite number >= 0"):
            hf_posenc.create_config("attenuated", attenuation_symmetry=[1.0, bad, 1.0, 1.0])
    with pytest.raises(ValueError, match="has 3 values but the model has 4 heads"):
        tiny_config("attenuated", attenuation_strength=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="kerple_kernel must be 'log' or 'power'"):
        hf_posenc.create_config("kerple", kerple_kernel="cosine")


def test_bad_attention_mask_shape_raises():
    model = tiny_mlm("alibi")
    ids = random_ids()
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 19\).*\[2, 20\]"):
        model(ids, attention_mask=torch.ones(2, 19))


def test_position_ids_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="position_ids are not supported"):
        tiny_mlm("learned")(random_ids(), position_ids=torch.arange(20)[None])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_hidden_layers": -1}, "num_hidden_layers must be a whole number >= 1"),
        ({"num_hidden_layers": 0}, "num_hidden_layers must be a whole number >= 1"),
        ({"num_attention_heads": 0}, "num_attention_heads must be a whole number >= 1"),
        ({"hidden_size": 2.5}, "hidden_size must be a whole number"),
        ({"layer_norm_eps": -1e-5}, "layer_norm_eps must be a small positive number"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob must be a probability"),
        ({"pad_token_id": 500}, "pad_token_id=500 is not a token"),
        ({"relative_attention_num_buckets": 32, "relative_attention_max_distance": 8}, "must exceed"),
    ],
)
def test_nonsense_configurations_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config("t5", **overrides)


@pytest.mark.parametrize(
    "variant, overrides, message",
    [
        ("alibi", {"alibi_symmetric": "no"}, "alibi_symmetric must be true or false; got 'no'"),
        ("alibi", {"alibi_learnable_slopes": 1}, "alibi_learnable_slopes must be true or false"),
        ("attenuated", {"attenuation_strength": True}, r"attenuation_strength \(w\) must be a finite number"),
        ("attenuated", {"attenuation_learnable": "yes"}, "attenuation_learnable must be true or false"),
        ("rope", {"rope_theta": float("inf")}, "rope_theta must be a finite number > 1"),
        ("rope", {"rope_theta": "10000"}, "rope_theta must be a finite number > 1"),
        ("tupe", {"tupe_untie_cls": "false"}, "tupe_untie_cls must be true or false"),
        ("fire", {"fire_hidden_size": 0}, "fire_hidden_size must be a whole number >= 1"),
        ("shaw", {"max_relative_position": True}, "max_relative_position must be a whole number >= 1"),
        ("sinusoidal", {"sinusoidal_scale_embeddings": "true"}, "sinusoidal_scale_embeddings must be true or false"),
        ("deberta", {"deberta_position_to_content": "v3"}, "deberta_position_to_content must be one of 'official'"),
        ("learned", {"pre_layer_norm": "False"}, "pre_layer_norm must be true or false"),
        ("rope", {"posenc_revision": 0}, "posenc_revision=0: this hf_posenc knows revisions 1 to 2"),
    ],
)
def test_options_of_the_wrong_type_are_refused_not_taken_for_true(variant, overrides, message):
    """A string such as "no" is truthy and True counts as 1 in Python: either would silently change the model."""
    with pytest.raises(ValueError, match=message):
        tiny_config(variant, **overrides)


@pytest.mark.parametrize(
    "ids, message",
    [
        (torch.rand(2, 5), "2-D integer tensor"),
        (torch.randint(5, 100, (2, 5, 3)), "2-D integer tensor"),
        (torch.randint(5, 100, (2, 0)), "hold no token"),
        (torch.tensor([[5, 6, 500]]), "token id 500, outside this model's vocabulary of 120"),
        (torch.tensor([[5, -1, 7]]), "token id -1"),
    ],
)
def test_malformed_input_ids_are_refused(ids, message):
    with pytest.raises(ValueError, match=message):
        tiny_mlm("rope")(ids)


def test_inputs_embeds_of_the_wrong_width_are_refused():
    with pytest.raises(ValueError, match=r"inputs_embeds must be \[batch, seq_len, hidden_size=32\]"):
        tiny_mlm("rope")(inputs_embeds=torch.randn(2, 5, 16))


@pytest.mark.parametrize("values", [[1, 1, 2, 0], [1, 0.5, 1, 0], [1, 1, -1, 0]])
def test_attention_mask_with_values_other_than_0_and_1_is_refused(values):
    with pytest.raises(ValueError, match="attention_mask must hold only 0"):
        tiny_mlm("alibi")(random_ids(1, 4), attention_mask=torch.tensor([values]))


@pytest.mark.parametrize("variant", [name for name in ALL if hf_posenc.ENCODINGS[name].absolute])
def test_left_padding_is_refused_where_it_would_shift_absolute_positions(variant):
    mask = torch.tensor([[0, 0, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="pad on the right"):
        tiny_mlm(variant)(random_ids(1, 6), attention_mask=mask)


def test_a_truncated_weights_file_names_the_file(tmp_path):
    tiny_mlm("rope").save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"weights \(\*\.safetensors\) in .* cannot be read.*save the model again"):
        AutoModelForMaskedLM.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "token_type_ids, message",
    [
        (torch.full((2, 6), 2), r"token_type_ids hold the segment 2, but this model has 2 segment types \(0 to 1\)"),
        (torch.full((2, 6), -1), "token_type_ids hold the segment -1"),
        (torch.zeros(2, 5, dtype=torch.long), r"shaped like the inputs \[2, 6\]; got a torch.int64 tensor of shape"),
        (torch.zeros(2, 6), "must be an integer tensor"),
    ],
)
def test_token_type_ids_outside_the_segment_vocabulary_are_refused(token_type_ids, message):
    model = tiny_mlm("rope")
    with pytest.raises(ValueError, match=message):
        model(random_ids(2, 6), token_type_ids=token_type_ids)
    with pytest.raises(ValueError, match=message):
        model(inputs_embeds=torch.randn(2, 6, 32), token_type_ids=token_type_ids)
    ids = random_ids(2, 6)
    with_types = model(ids, token_type_ids=torch.tensor([[0, 0, 0, 1, 1, 1]] * 2)).logits
    assert not torch.equal(with_types, model(ids).logits)  # the second segment's embedding is used


@pytest.mark.parametrize("activation", ["gelu_fancy", "", None, 3])
def test_an_unknown_hidden_act_is_refused(activation):
    with pytest.raises(ValueError, match="hidden_act must name one of transformers' activations"):
        tiny_config("alibi", hidden_act=activation)
    assert tiny_config("alibi", hidden_act="relu").hidden_act == "relu"

"""TUPE and the attenuated encoding against their reference code (written out here from the reference, not from the
package), and the bias floor that must not change any valid bias's attention."""

import math

import pytest
import torch
from conftest import random_ids, tiny_mlm
from transformers.models.t5.modeling_t5 import T5Attention


def reference_tupe_bias(position, seq_len: int) -> torch.Tensor:
    """guolinke/TUPE, fairseq/modules/transformer_sentence_encoder.py: the [CLS]-untied absolute correlation over a
    table one row longer than the text, plus the relative bias with [CLS]'s own buckets, shared by all layers."""
    heads, head_dim = position.num_heads, position.head_dim
    rows = position.position_norm(position.position_embeddings.weight[: seq_len + 1])
    queries = position.position_query(rows) * (2 * head_dim) ** -0.5
    keys = position.position_key(rows)
    queries = queries.view(seq_len + 1, heads, head_dim).transpose(0, 1)
    keys = keys.view(seq_len + 1, heads, head_dim).transpose(0, 1)
    absolute = torch.bmm(queries, keys.transpose(1, 2))
    cls_to_others, others_to_cls = absolute[:, 0, 0], absolute[:, 1, 1]
    absolute = absolute[:, 1:, 1:].clone()
    absolute[:, :, 0] = others_to_cls.view(-1, 1)
    absolute[:, 0, :] = cls_to_others.view(-1, 1)

    num_buckets = position.relative.num_buckets
    context = torch.arange(seq_len)[:, None]
    memory = torch.arange(seq_len)[None, :]
    buckets = T5Attention._relative_position_bucket(
        memory - context, bidirectional=True, num_buckets=num_buckets, max_distance=position.relative.max_distance
    )
    buckets[:, 0] = num_buckets
    buckets[0, :] = num_buckets // 2
    relative = position.relative.relative_attention_bias.weight[buckets].permute(2, 0, 1)
    return absolute + relative


@pytest.mark.parametrize("seq_len", [2, 9, 40])
def test_tupe_matches_the_reference_cls_untying(seq_len):
    model = tiny_mlm("tupe").double()
    position = model.posenc.position
    torch.nn.init.normal_(position.relative.relative_attention_bias.weight)
    assert position.position_embeddings.num_embeddings == 48 + 1
    assert position.relative.relative_attention_bias.num_embeddings == 16 + 1
    torch.testing.assert_close(position.bias(seq_len, "cpu").double(), reference_tupe_bias(position, seq_len))
    bias = position.bias(seq_len, "cpu")
    # [CLS]'s row and column are one value per head whatever the positions: untied from the relative bias too.
    assert torch.equal(bias[:, 0, :], bias[:, 0, :1].expand(-1, seq_len))
    assert torch.equal(bias[:, 1:, 0], bias[:, 1:2, 0].expand(-1, seq_len - 1))


def test_tupe_revision_1_kept_the_relative_bias_on_cls():
    position = tiny_mlm("tupe", posenc_revision=1).posenc.position
    torch.nn.init.normal_(position.relative.relative_attention_bias.weight)
    bias = position.bias(12, "cpu")
    assert position.position_embeddings.num_embeddings == 48
    assert bias[:, 0, :].std(dim=-1).min() > 0.1  # the [CLS] row varies across keys


def gaussian_probabilities(seq_len: int, w: float) -> torch.Tensor:
    """tigerchen52/locality_symmetry, experiments/model/attenuated.py (`cal_guassian_att`): row-normalised
    exp(-|w (j - i)^2|) over the row's keys, self included."""
    table = torch.empty(seq_len, seq_len, dtype=torch.float64)
    for i in range(seq_len):
        weights = [math.exp(-abs(w * (j - i) ** 2)) for j in range(seq_len)]
        for j in range(seq_len):
            table[i, j] = weights[j] / sum(weights)
    return table


def test_attenuated_probability_form_is_the_seed_repositorys_table():
    position = tiny_mlm("attenuated", attenuation_form="probability", attenuation_strength=0.5).posenc.position
    bias = position.bias(16, "cpu").double()
    for head in range(4):  # one table shared by every head (and layer)
        torch.testing.assert_close(bias[head], gaussian_probabilities(16, 0.5), rtol=1e-6, atol=1e-7)
    assert bias[0, 8, 8].item() == pytest.approx(0.3989, abs=1e-4)  # an interior row: 1/sqrt(2 pi)


def test_attenuated_probability_form_normalises_over_real_keys():
    position = tiny_mlm("attenuated", attenuation_form="probability", attenuation_strength=0.5).posenc.position
    padded = position.bias(16, "cpu", real_lengths=torch.tensor([16, 10]))
    torch.testing.assert_close(padded[0], position.bias(16, "cpu"))
    torch.testing.assert_close(padded[1, :, :10, :10], position.bias(10, "cpu"))
    assert padded.shape == (2, 4, 16, 16)


def test_attenuated_learned_table_is_the_seed_repositorys_initialisation():
    """tigerchen52/locality_symmetry, experiments/model/attenuated_l.py (`gen_relative_guassian`): per layer and
    head a learnable table of max_len values indexed by |i - j|, started at exp(-w d^2) / sum_d' exp(-w d'^2)."""
    model = tiny_mlm("attenuated", attenuation_form="learned_table", attenuation_strength=0.5)
    position = model.posenc.position
    normaliser = sum(math.exp(-0.5 * d**2) for d in range(48))
    expected = torch.tensor([math.exp(-0.5 * d**2) / normaliser for d in range(48)])
    assert position.distance_table.shape == (2, 4, 48)
    torch.testing.assert_close(position.distance_table, expected.expand(2, 4, 48))
    assert position.distance_table[0, 0, 0].item() == pytest.approx(0.5703, abs=1e-4)
    torch.nn.init.normal_(position.distance_table)
    bias = position.bias(12, "cpu")
    for layer in range(2):
        for head in range(4):
            for i in range(12):
                for j in range(12):
                    assert bias[layer, head, i, j] == position.distance_table[layer, head, abs(i - j)]
    ids = random_ids()
    model(ids, labels=ids).loss.backward()
    assert position.distance_table.grad[1].abs().sum() > 0  # every layer's table trains


def test_each_layer_reads_its_own_table():
    model = tiny_mlm("attenuated", attenuation_form="learned_table").eval()
    position = model.posenc.position
    with torch.no_grad():
        position.distance_table[1] = -30.0 * torch.arange(48)  # the last layer alone attends to itself
    attentions = model(random_ids(1, 20), output_attentions=True).attentions
    first_layer_diagonal = attentions[0][0].diagonal(dim1=-2, dim2=-1).mean()
    last_layer_diagonal = attentions[1][0].diagonal(dim1=-2, dim2=-1).mean()
    assert last_layer_diagonal > 0.9 > first_layer_diagonal


def test_the_seed_forms_are_refused_where_they_cannot_express_the_setting():
    with pytest.raises(ValueError, match="learned_table.*attenuation_symmetry must be 1"):
        tiny_mlm("attenuated", attenuation_form="learned_table", attenuation_symmetry=0.5)
    with pytest.raises(ValueError, match="attenuation_form must be one of 'logit', 'probability', 'learned_table'"):
        tiny_mlm("attenuated", attenuation_form="gaussian")


@pytest.mark.parametrize("variant", ["t5", "tupe", "fire"])
def test_shifting_a_learned_bias_by_a_constant_leaves_attention_unchanged(variant):
    """Softmax ignores a constant added to a row: shifting every T5 bucket (or FIRE's output) by -60 must not change
    attention, with or without padding. Revision 1's absolute floor at -50 did change it."""
    for revision, should_match in ((2, True), (1, False)):
        model = tiny_mlm(variant, posenc_revision=revision).eval()
        position = model.posenc.position
        shifted_weight = {
            "t5": lambda: position.relative_attention_bias.weight,
            "tupe": lambda: position.relative.relative_attention_bias.weight,
            "fire": lambda: position.mlp[2].bias,
        }[variant]()
        torch.nn.init.normal_(shifted_weight)
        ids, mask = random_ids(2, 24), torch.ones(2, 24, dtype=torch.long)
        mask[1, 15:] = 0
        with torch.no_grad():
            before = model(ids, attention_mask=mask, output_attentions=True).attentions
            shifted_weight -= 60
            after = model(ids, attention_mask=mask, output_attentions=True).attentions
        matches = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(before, after))
        assert matches == should_match, (variant, revision)

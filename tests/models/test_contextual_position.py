"""The bidirectional contextual position encoding (`cope`): its causal half is the published causal CoPE, its right
half the mirror-image rule, the shared table makes it reversal-symmetric, gradients reach gates and tables, counts stay
inside each document, and bad settings are refused."""

import math

import pytest
import torch
from conftest import random_ids, tiny_config, tiny_mlm
from transformers import AutoModelForMaskedLM

import hf_posenc


def cope_model(dtype=torch.float64, **overrides):
    """A tiny `cope` masked LM (float64 unless told) whose tables are random (they start at zero, as in the paper,
    which would make every position term vanish)."""
    model = tiny_mlm("cope", **overrides).to(dtype).eval()
    torch.nn.init.normal_(model.posenc.position.position_embeddings)
    return model


def interpolated_logit(query_row, key_rows, key_index, table, max_positions, first, last):
    """Written from the paper's equations: the scaled logit q_i.k_j / sqrt(d) plus q_i.e[p] interpolated at the count
    p = min(sum of sigmoid(q_i.k_t / sqrt(d)) over t = first..last, P - 1)."""
    scale = math.sqrt(query_row.shape[-1])
    count = sum(torch.sigmoid(query_row @ key_rows[t] / scale) for t in range(first, last + 1))
    count = min(count.item(), max_positions - 1)
    low, high = math.floor(count), math.ceil(count)
    fraction = count - low
    position_term = (1 - fraction) * (query_row @ table[low]) + fraction * (query_row @ table[high])
    return (query_row @ key_rows[key_index] / scale + position_term).item(), count


def published_causal_cope(query, key, table, max_positions):
    """[B, H, T, T] causal CoPE logits (NaN right of the diagonal) and the counts, by loops over every (i, j <= i):
    the gates of the keys t = j..i, as the paper's code computes them with a causal mask."""
    batch, heads, length, _ = query.shape
    logits = torch.full((batch, heads, length, length), float("nan"), dtype=torch.float64)
    counts = []
    for b in range(batch):
        for h in range(heads):
            for i in range(length):
                for j in range(i + 1):
                    logits[b, h, i, j], count = interpolated_logit(
                        query[b, h, i], key[b, h], j, table, max_positions, first=j, last=i
                    )
                    counts.append(count)
    return logits, counts


def two_sided_cope(query, key, left_table, right_table, max_positions):
    """[B, H, T, T] logits of the two-sided definition by loops: keys on the left as the published causal form, keys
    on the right counted over t = i..j with the right table."""
    logits, _ = published_causal_cope(query, key, left_table, max_positions)
    batch, heads, length, _ = query.shape
    for b in range(batch):
        for h in range(heads):
            for i in range(length):
                for j in range(i + 1, length):
                    logits[b, h, i, j], _ = interpolated_logit(
                        query[b, h, i], key[b, h], j, right_table, max_positions, first=i, last=j
                    )
    return logits


def model_logits(position, query, key, scaling):
    """What the eager attention computes before the softmax: (q.k + scores) times its 1/sqrt(d) scaling."""
    context = position.layer_context(query.shape[-2], "cpu", query.dtype)
    return (query @ key.transpose(-1, -2) + position.scores(query, key, 1, context)) * scaling


@pytest.mark.parametrize("shared", [False, True])
def test_cope_the_causal_half_is_the_published_causal_cope(shared):
    model = cope_model(cope_max_positions=4, cope_shared_table=shared)
    position, scaling = model.posenc.position, model.posenc.layers[1].attention.scaling
    query, key = torch.randn(2, 4, 6, 8, dtype=torch.float64), torch.randn(2, 4, 6, 8, dtype=torch.float64)
    expected, counts = published_causal_cope(query, key, position.position_embeddings[1, 0], max_positions=4)
    ours = model_logits(position, query, key, scaling)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    torch.testing.assert_close(ours[..., causal], expected[..., causal], atol=1e-10, rtol=1e-10)
    # Both branches ran: counts clamped at P - 1 = 3 and fractional counts below it.
    assert any(count == 3 for count in counts) and any(0 < count % 1 and count < 3 for count in counts)


@pytest.mark.parametrize("shared", [False, True])
def test_cope_the_right_half_counts_from_the_query_to_the_key_with_its_table(shared):
    model = cope_model(cope_max_positions=4, cope_shared_table=shared)
    position, scaling = model.posenc.position, model.posenc.layers[1].attention.scaling
    query, key = torch.randn(1, 4, 6, 8, dtype=torch.float64), torch.randn(1, 4, 6, 8, dtype=torch.float64)
    tables = position.position_embeddings[1]
    expected = two_sided_cope(query, key, tables[0], tables[-1], max_positions=4)
    torch.testing.assert_close(model_logits(position, query, key, scaling), expected, atol=1e-10, rtol=1e-10)


def test_cope_the_models_attention_is_the_two_sided_definition():
    """End to end through the encoder's eager attention: layer 0's probabilities from its own queries and keys."""
    model = cope_model()
    ids = random_ids(2, 10)
    output = model(ids, output_hidden_states=True, output_attentions=True)
    attention = model.posenc.layers[0].attention
    qkv = attention.query_key_value(output.hidden_states[0]).view(2, 10, 3, 4, 8)
    query, key, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    tables = model.posenc.position.position_embeddings[0]
    with torch.no_grad():
        expected = torch.softmax(two_sided_cope(query, key, tables[0], tables[1], max_positions=8), dim=-1)
    torch.testing.assert_close(output.attentions[0], expected, atol=1e-6, rtol=1e-6)  # the softmax runs in float32


def test_cope_with_the_same_content_everywhere_the_count_is_the_distance_times_the_gate():
    position = cope_model().posenc.position
    query = torch.randn(1, 4, 1, 8, dtype=torch.float64).expand(1, 4, 12, 8)
    key = torch.randn(1, 4, 1, 8, dtype=torch.float64).expand(1, 4, 12, 8)
    gate = torch.sigmoid((query[..., :1, :] * key[..., :1, :]).sum(-1, keepdim=True) / math.sqrt(8))
    distance = torch.arange(12)[:, None] - torch.arange(12)[None, :]
    expected = ((distance.abs() + 1) * gate).clamp(max=7)
    counts = position.contextual_positions(query, key, position.layer_context(12, "cpu", None))
    torch.testing.assert_close(counts, expected)


def test_cope_the_counting_rule_is_mirror_symmetric_and_the_shared_table_makes_the_scores_symmetric():
    """Reversing the sequence turns a key d tokens to the left into one d tokens to the right over the same tokens:
    the counts of the reversed sequence are the reversed counts, whatever the tables; the scores follow only when the
    two sides read one table."""
    query, key = torch.randn(2, 4, 9, 8, dtype=torch.float64), torch.randn(2, 4, 9, 8, dtype=torch.float64)

    def reversed_both_ways(matrix):
        return matrix.flip(-1).flip(-2)

    for shared in (True, False):
        position = cope_model(cope_shared_table=shared).posenc.position
        assert position.symmetric is shared
        context = position.layer_context(9, "cpu", None)
        counts = position.contextual_positions(query, key, context)
        mirrored_counts = position.contextual_positions(query.flip(-2), key.flip(-2), context)
        torch.testing.assert_close(mirrored_counts, reversed_both_ways(counts))
        scores = position.scores(query, key, 0, context)
        mirrored_scores = position.scores(query.flip(-2), key.flip(-2), 0, context)
        assert torch.allclose(mirrored_scores, reversed_both_ways(scores)) is shared


def test_cope_a_shared_table_model_is_reversal_equivariant_and_a_two_table_one_is_not():
    """Nothing else in a `cope` model reads positions, so with one table a reversed input gives reversed outputs."""
    ids = random_ids(2, 11)
    shared = cope_model(cope_shared_table=True)
    torch.testing.assert_close(shared(ids.flip(1)).logits, shared(ids).logits.flip(1))
    separate = cope_model()
    assert not torch.allclose(separate(ids.flip(1)).logits, separate(ids).logits.flip(1), atol=1e-4)


def test_cope_gradients_reach_the_gates_and_the_tables():
    position = cope_model(cope_max_positions=6).posenc.position
    query = torch.randn(1, 4, 7, 8, dtype=torch.float64, requires_grad=True)
    key = torch.randn(1, 4, 7, 8, dtype=torch.float64, requires_grad=True)
    context = position.layer_context(7, "cpu", None)
    # Keys enter the encoding only through the gates: a gradient to them is a gradient through the counts.
    assert torch.autograd.gradcheck(lambda q, k: position.scores(q, k, 0, context), (query, key))
    position.scores(query, key, 0, context).square().sum().backward()
    assert key.grad.abs().sum() > 0
    assert position.position_embeddings.grad[0].abs().sum() > 0  # layer 0, both tables
    assert position.position_embeddings.grad[0, 1].abs().sum() > 0
    assert position.position_embeddings.grad[1].abs().sum() == 0  # layer 1 was not used


def test_cope_the_zero_initialised_tables_train_from_the_first_step():
    model = tiny_mlm("cope")
    assert not model.posenc.position.position_embeddings.any()  # the paper's initialisation
    ids = random_ids(2, 12)
    labels = torch.where(torch.rand(ids.shape) < 0.3, ids, -100)
    labels[0, 0] = ids[0, 0]
    model(ids, labels=labels).loss.backward()
    assert model.posenc.position.position_embeddings.grad.abs().sum() > 0


@pytest.mark.parametrize("shared", [False, True])
def test_cope_counts_stay_inside_each_document_and_ignore_padding(shared):
    # float32: padded tokens see no key, and the mask value of a float64 model becomes -inf in the attention's float32
    # softmax, which would make their rows NaN.
    model = cope_model(torch.float32, cope_shared_table=shared)
    lengths = [[5, 8, 3], [12, 4]]
    documents = [[random_ids(1, length)[0] for length in row] for row in lengths]
    ids = torch.zeros(2, 20, dtype=torch.long)
    document_ids = torch.full((2, 20), -1)
    mask = torch.zeros(2, 20, dtype=torch.long)
    for row, row_documents in enumerate(documents):
        start = 0
        for index, document in enumerate(row_documents):
            ids[row, start : start + len(document)] = document
            document_ids[row, start : start + len(document)] = 10 * row + index
            start += len(document)
        mask[row, :start] = 1
    with torch.no_grad():
        packed = model(ids, attention_mask=mask, document_ids=document_ids).logits
        for row, row_documents in enumerate(documents):
            start = 0
            for document in row_documents:
                alone = model(document[None]).logits[0]
                torch.testing.assert_close(packed[row, start : start + len(document)], alone)
                start += len(document)


def test_cope_left_padding_leaves_the_counts_of_real_tokens_unchanged():
    """Real tokens stay contiguous, so the tokens between a real query and a real key are the same real tokens."""
    model = cope_model(torch.float32)
    ids = random_ids(1, 12)
    padded = torch.cat((torch.zeros(1, 5, dtype=torch.long), ids), dim=1)
    mask = torch.cat((torch.zeros(1, 5, dtype=torch.long), torch.ones(1, 12, dtype=torch.long)), dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(padded, attention_mask=mask).logits[:, 5:], model(ids).logits)


def test_cope_defaults_and_saved_settings():
    config = hf_posenc.create_config("cope")
    assert (config.cope_max_positions, config.cope_shared_table) == (64, False)
    assert hf_posenc.ENCODINGS["cope"].route == "score"


def test_cope_a_saved_model_reloads_its_tables_and_settings(tmp_path):
    model = cope_model(torch.float32, cope_shared_table=True, cope_max_positions=5)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert (reloaded.config.cope_max_positions, reloaded.config.cope_shared_table) == (5, True)
    ids = random_ids(1, 9)
    torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, atol=0, rtol=0)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"cope_max_positions": 1}, "cope_max_positions must be a whole number >= 2"),
        ({"cope_max_positions": 0}, "cope_max_positions must be a whole number >= 2"),
        ({"cope_max_positions": 16.0}, "cope_max_positions must be a whole number >= 2"),
        ({"cope_max_positions": True}, "cope_max_positions must be a whole number >= 2"),
        ({"cope_shared_table": "yes"}, "cope_shared_table must be true or false"),
    ],
)
def test_cope_bad_settings_are_refused_with_a_one_line_error(settings, message):
    with pytest.raises(ValueError, match=message) as error:
        tiny_config("cope", **settings)
    assert "\n" not in str(error.value)

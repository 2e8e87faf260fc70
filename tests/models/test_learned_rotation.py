"""Learned commuting rotations (comrope: ComRoPE / LieRE in one dimension): the rotations are exp(p A) of a
block-diagonal skew-symmetric generator per layer and head (checked against scipy's expm and full head-size matrices),
orthogonal, purely relative (shifting every position leaves the scores unchanged), trained, read per layer by the
encoder, at each token's position with packed documents, and in half precision."""

import pytest
import scipy.linalg
import torch
from conftest import random_ids, tiny_config, tiny_mlm
from transformers import AutoModel

from hf_posenc.positional_base import randomized_positions

LAYERS, HEADS, HEAD_DIM, BLOCK = 2, 4, 16, 4


def comrope_model(**settings):
    """A float64 base model: hidden 64, 4 heads of 16 dimensions, blocks of 4 (4 blocks per head)."""
    return AutoModel.from_config(tiny_config("comrope", hidden_size=64, **settings)).double().eval()


def full_rotation(generator_blocks: torch.Tensor, position: float) -> torch.Tensor:
    """exp(position * A) for one head as a [head_dim, head_dim] matrix, by scipy on the block-diagonal A."""
    generator = torch.block_diag(*generator_blocks).double().numpy()
    return torch.from_numpy(scipy.linalg.expm(position * generator))


def test_comrope_rotations_are_the_exponential_of_block_diagonal_skew_symmetric_generators():
    position = comrope_model().position
    weights = position.generator_weights.detach()
    assert weights.shape == (LAYERS, HEADS, HEAD_DIM // BLOCK, BLOCK, BLOCK)
    generators = position.generators().detach()
    torch.testing.assert_close(generators, weights - weights.transpose(-1, -2), rtol=0, atol=0)
    table = position.layer_context(9, "cpu", torch.float64)  # [L, H, T, blocks, b, b]
    for layer in range(LAYERS):
        for head in range(HEADS):
            for p in (0, 1, 5, 8):
                ours = torch.block_diag(*table[layer, head, p])
                torch.testing.assert_close(ours, full_rotation(generators[layer, head], p), rtol=1e-10, atol=1e-12)


def test_comrope_rotations_are_orthogonal_with_determinant_one_in_every_precision():
    position = tiny_mlm("comrope", hidden_size=64).posenc.position
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 2e-5)):  # float32: scaling and squaring
        table = position.layer_context(64, "cpu", dtype)
        identity = torch.eye(BLOCK, dtype=dtype).expand_as(table)
        torch.testing.assert_close(table.transpose(-1, -2) @ table, identity, rtol=0, atol=tolerance)
        determinant = torch.linalg.det(table.double())
        torch.testing.assert_close(determinant, torch.ones_like(determinant), rtol=0, atol=4 * tolerance)


def rotated_scores(position, layer: int, positions: torch.Tensor, query, key) -> torch.Tensor:
    """q.k scores of one layer with every token at `positions` ([B, T]), through the encoding's own gather."""
    table = position.layer_context(int(positions.max()) + 1, "cpu", torch.float64)
    context = position.context_at_positions(table, positions)[layer]
    rotated_query, rotated_key = position.rotate(query, key, context)
    return rotated_query @ rotated_key.transpose(-1, -2)


def test_comrope_shifting_every_position_leaves_the_scores_unchanged():
    position = comrope_model().position
    torch.nn.init.normal_(position.generator_weights, std=0.5)  # large angles: the shift must not matter either
    query, key = (torch.randn(2, HEADS, 10, HEAD_DIM, dtype=torch.float64) for _ in range(2))
    positions = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0, 2, 3, 7, 8, 9, 13, 14, 20, 21]])
    for layer in range(LAYERS):
        reference = rotated_scores(position, layer, positions, query, key)
        for shift in (1, 17, 250):
            shifted = rotated_scores(position, layer, positions + shift, query, key)
            torch.testing.assert_close(shifted, reference, rtol=1e-9, atol=1e-9)
        # The score is q_i^T exp((j - i) A) k_j: purely relative.
        generators = position.generators().detach()[layer]
        for head in range(HEADS):
            for i, j in ((0, 0), (2, 7), (9, 1)):
                offset = float(positions[1, j] - positions[1, i])
                relative = torch.block_diag(*[full_rotation(generators[head], offset)])
                expected = query[1, head, i] @ relative @ key[1, head, j]
                torch.testing.assert_close(reference[1, head, i, j], expected, rtol=1e-9, atol=1e-9)
    # Not trivially so: a different distance gives a different score.
    assert not torch.allclose(reference[..., 0, 1], reference[..., 0, 5])


def attention_by_hand(model, states: torch.Tensor, index: int, positions: list[int]) -> torch.Tensor:
    """[H, T, T] attention of layer `index` on its input `states` ([1, T, D]) with token t at `positions[t]`: queries
    and keys turned by full head-size matrices exp(p A) from scipy."""
    length = states.shape[1]
    layer, generators = model.layers[index], model.position.generators().detach()[index]
    projected = layer.attention.query_key_value(states).view(1, length, 3, HEADS, HEAD_DIM).permute(2, 0, 3, 1, 4)
    query, key = projected[0][0], projected[1][0]  # [H, T, d]
    logits = torch.empty(HEADS, length, length, dtype=torch.float64)
    for head in range(HEADS):
        rotations = [full_rotation(generators[head], p) for p in positions]
        rotated_query = torch.stack([rotations[t] @ query[head, t] for t in range(length)])
        rotated_key = torch.stack([rotations[t] @ key[head, t] for t in range(length)])
        logits[head] = rotated_query @ rotated_key.T / HEAD_DIM**0.5
    return torch.softmax(logits, dim=-1)


def test_comrope_each_layer_rotates_with_its_own_generator_in_the_encoder():
    model = comrope_model()
    outputs = model(random_ids(1, 11), output_attentions=True, output_hidden_states=True)
    generators = model.position.generators().detach()
    assert not torch.allclose(generators[0], generators[1])
    for index in range(LAYERS):
        expected = attention_by_hand(model, outputs.hidden_states[index], index, list(range(11)))
        torch.testing.assert_close(outputs.attentions[index][0], expected, rtol=1e-5, atol=1e-6)


def test_comrope_gradients_reach_the_generators_and_initialisation_follows_the_setting():
    model = tiny_mlm("comrope", hidden_size=64, comrope_init_std=0.3)
    weights = model.posenc.position.generator_weights
    assert abs(float(weights.detach().std()) - 0.3) < 0.03 and abs(float(weights.detach().mean())) < 0.03
    ids = random_ids()
    model(ids, labels=ids).loss.backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0
    assert weights.grad[0].abs().sum() > 0 and weights.grad[1].abs().sum() > 0  # both layers' generators


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_comrope_half_precision_models_compute_what_float32_computes(dtype):
    model = tiny_mlm("comrope", hidden_size=64).eval()
    ids = random_ids(2, 16)
    with torch.no_grad():
        expected = model.base_model(ids).last_hidden_state
        model.to(dtype)
        assert model.posenc.position.layer_context(16, "cpu", dtype).dtype == dtype
        got = model.base_model(ids).last_hidden_state
    assert got.dtype == dtype and torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), expected, rtol=0.05, atol=0.05)


def test_comrope_packed_documents_read_the_rotation_of_their_own_positions():
    model = comrope_model()
    documents = [random_ids(1, length)[0] for length in (5, 9)]
    document_ids = torch.tensor([[3] * 5 + [4] * 9])
    with torch.no_grad():
        together = model(torch.cat(documents)[None], document_ids=document_ids).last_hidden_state[0]
        torch.testing.assert_close(together[:5], model(documents[0][None]).last_hidden_state[0])
        torch.testing.assert_close(together[5:], model(documents[1][None]).last_hidden_state[0])


def test_comrope_randomized_positions_rotate_each_token_by_its_drawn_position():
    plain = comrope_model()
    ids = random_ids(1, 11)
    for position_range in (11, 40):  # 11 of 11 positions, sorted, are 0..10: the plain model
        randomized = comrope_model(randomized_positions_range=position_range)
        randomized.load_state_dict(plain.state_dict())
        drawn = randomized_positions(
            position_range, 11, training=False, device="cpu"
        ).tolist()  # evaluation repeats the forward's draw
        assert (drawn == list(range(11))) == (position_range == 11)
        outputs = randomized(ids, output_attentions=True, output_hidden_states=True)
        for index in range(LAYERS):
            expected = attention_by_hand(randomized, outputs.hidden_states[index], index, drawn)
            torch.testing.assert_close(outputs.attentions[index][0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "settings, problem",
    [
        ({"comrope_block_size": 3}, r"comrope_block_size=3 does not divide the head dimension .* = 16"),
        ({"comrope_block_size": 32}, "comrope_block_size=32 does not divide"),
        ({"comrope_block_size": 1}, "comrope_block_size must be a whole number >= 2"),
        ({"comrope_block_size": 4.0}, "comrope_block_size must be a whole number >= 2"),
        ({"comrope_init_std": 0}, "comrope_init_std must be a finite number > 0"),
        ({"comrope_init_std": float("inf")}, "comrope_init_std must be a finite number > 0"),
    ],
)
def test_comrope_bad_settings_are_refused_when_the_config_is_built(settings, problem):
    with pytest.raises(ValueError, match=problem):
        tiny_config("comrope", hidden_size=64, **settings)
    assert tiny_config("comrope", hidden_size=64, comrope_block_size=8).comrope_block_size == 8

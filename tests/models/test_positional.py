"""The positional encodings: what each route computes, symmetry by construction, length limits."""

import pytest
import torch
from conftest import ALL, random_ids, tiny_mlm

import hf_posenc
from hf_posenc.positional import signed_distance

EXTRAPOLATING = [name for name in ALL if hf_posenc.ENCODINGS[name].extrapolates]
# Biases built from positions alone; a content-dependent bias (reads_hidden_states) has none.
CONTENT_DEPENDENT = [name for name in ALL if hf_posenc.ENCODINGS[name].reads_hidden_states]
BIAS_ROUTE = [name for name in ALL if hf_posenc.ENCODINGS[name].route == "bias" and name not in CONTENT_DEPENDENT]
QUERY_KEY_ROUTES = [name for name in ALL if hf_posenc.ENCODINGS[name].route in ("rotate", "score")]
FIXED_TABLES = [name for name in ALL if not hf_posenc.ENCODINGS[name].extrapolates]
ABSOLUTE = [name for name in ALL if hf_posenc.ENCODINGS[name].absolute]


def is_toeplitz(matrix: torch.Tensor) -> bool:
    """True when matrix[..., i, j] depends only on i - j."""
    return torch.allclose(matrix[..., 1:, 1:], matrix[..., :-1, :-1], atol=1e-5)


@pytest.mark.parametrize("variant", [name for name in BIAS_ROUTE if name not in ABSOLUTE])
def test_relative_biases_depend_only_on_distance(variant):
    model = tiny_mlm(variant)
    bias = model.posenc.position.bias(24, "cpu")
    assert bias.shape == (4, 24, 24)
    assert is_toeplitz(bias)


@pytest.mark.parametrize("variant", QUERY_KEY_ROUTES)
def test_query_key_encodings_depend_only_on_distance(variant):
    """With the same content at every position, the logits of relative encodings depend only on i - j."""
    position = tiny_mlm(variant).posenc.position
    for parameter in position.parameters():  # tables that start at zero (cope, as its paper): give them values
        if not parameter.any():
            torch.nn.init.normal_(parameter)
    query = torch.randn(1, 4, 1, 8).expand(1, 4, 24, 8)
    key = torch.randn(1, 4, 1, 8).expand(1, 4, 24, 8)
    context = position.layer_context(24, "cpu", torch.float32)
    if position.per_layer_context:  # one rotation per layer: check the second layer's
        context = context[1]
    if position.route == "rotate":
        query, key = position.rotate(query, key, context)
        logits = query @ key.transpose(-1, -2)
    else:
        logits = position.scores(query, key, 1, context)
    assert logits.shape == (1, 4, 24, 24)
    assert is_toeplitz(logits)
    assert not torch.allclose(logits[..., 0, 1], logits[..., 0, 5])


@pytest.mark.parametrize(
    "variant, overrides",
    [("alibi", {}), ("kerple", {}), ("kerple", {"kerple_kernel": "power"}), ("attenuated", {})],
)
def test_variants_symmetric_by_construction_give_a_symmetric_bias(variant, overrides):
    position = tiny_mlm(variant, **overrides).posenc.position
    assert position.symmetric
    bias = position.bias(24, "cpu")
    torch.testing.assert_close(bias, bias.transpose(-1, -2))


@pytest.mark.parametrize(
    "variant, overrides",
    [("alibi", {"alibi_symmetric": False}), ("attenuated", {"attenuation_symmetry": 0.5}), ("t5", {}), ("fire", {})],
)
def test_asymmetric_variants_are_declared_and_are_asymmetric(variant, overrides):
    model = tiny_mlm(variant, **overrides)
    if variant in ("t5", "fire"):  # learned biases: make them non-trivial first
        torch.nn.init.normal_(next(model.posenc.position.parameters()), std=1.0)
    position = model.posenc.position
    bias = position.bias(24, "cpu")
    assert not position.symmetric
    assert not torch.allclose(bias, bias.transpose(-1, -2))


def test_attenuated_bias_is_the_papers_gaussian():
    strengths, ratios = [0.1, 0.2, 0.3, 0.4], [1.0, 0.5, 2.0, 0.0]
    position = tiny_mlm("attenuated", attenuation_strength=strengths, attenuation_symmetry=ratios).posenc.position
    bias = position.bias(10, "cpu")
    for head, (w, s) in enumerate(zip(strengths, ratios)):
        for i in range(10):
            for j in range(10):
                expected = -w * (i - j) ** 2 if j <= i else -s * w * (i - j) ** 2
                assert bias[head, i, j].item() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_alibi_slopes_follow_the_paper():
    position = tiny_mlm("alibi").posenc.position
    torch.testing.assert_close(position.slopes[0], torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8]))
    torch.testing.assert_close(position.bias(5, "cpu")[0, 4, 1], torch.tensor(-3 * 0.25))
    asymmetric = tiny_mlm("alibi", alibi_symmetric=False).posenc.position.bias(5, "cpu")
    assert asymmetric[0, 4, 1].item() == pytest.approx(-3 * 2.0**-2)  # key on the left: head's own slope
    assert asymmetric[0, 1, 4].item() == pytest.approx(-3 * 2.0**-8)  # key on the right: mirrored head's


def test_learnable_parameters_train():
    model = tiny_mlm("attenuated", attenuation_learnable=True, attenuation_per_head=True)
    ids = random_ids()
    model(ids, labels=ids).loss.backward()
    position = model.posenc.position
    assert position.strength.shape == (4,) and position.strength.grad is not None
    assert not position.symmetric


@pytest.mark.parametrize("variant", EXTRAPOLATING)
def test_extrapolating_variants_run_beyond_max_position_embeddings(variant):
    model = tiny_mlm(variant).eval()
    output = model(random_ids(1, 2 * 48), output_attentions=True)
    assert output.logits.shape == (1, 96, 120)
    assert torch.isfinite(output.logits).all()


@pytest.mark.parametrize("variant", FIXED_TABLES)
def test_fixed_tables_refuse_longer_sequences(variant):
    model = tiny_mlm(variant)
    assert not hf_posenc.ENCODINGS[variant].extrapolates
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=48.*cannot extrapolate"):
        model(random_ids(1, 49))


def test_signed_distance_convention():
    # Positive when the key is left of the query, as the attenuated and alibi docstrings say.
    assert signed_distance(3, "cpu").tolist() == [[0, -1, -2], [1, 0, -1], [2, 1, 0]]


def test_uniform_attention_without_position_is_permutation_equivariant():
    model = tiny_mlm("nope").eval()
    ids = random_ids(1, 12)
    permutation = torch.randperm(12)
    torch.testing.assert_close(
        model(ids[:, permutation]).logits, model(ids).logits[:, permutation], atol=1e-5, rtol=1e-5
    )
    attention = model(ids, output_attentions=True).attentions[0]
    permuted = model(ids[:, permutation], output_attentions=True).attentions[0]
    torch.testing.assert_close(permuted, attention[:, :, permutation][:, :, :, permutation], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("variant", [name for name in ALL if name not in QUERY_KEY_ROUTES + CONTENT_DEPENDENT])
def test_position_attention_is_row_stochastic_and_measurable(variant):
    from hf_posenc import metrics

    attention = metrics.position_attention(tiny_mlm(variant), 24)
    layers = 1 if hf_posenc.ENCODINGS[variant].route == "embed" else 2
    assert attention.shape == (layers, 4, 24, 24) and attention.dtype == torch.float64
    torch.testing.assert_close(attention.sum(-1), torch.ones(layers, 4, 24, dtype=torch.float64))
    assert metrics.locality(attention).shape == (layers, 4)


def test_position_attention_reads_locality_and_symmetry_without_data():
    from hf_posenc import metrics

    def read(**overrides):
        attention = metrics.position_attention(tiny_mlm("attenuated", **overrides), 32)
        return metrics.locality(attention).mean().item(), metrics.symmetry(
            attention, method="scale_aware"
        ).mean().item()

    wide, narrow = read(attenuation_strength=0.01), read(attenuation_strength=1.0)
    assert narrow[0] > wide[0]  # a stronger penalty w is more local
    assert read(attenuation_symmetry=1.0)[1] == pytest.approx(1.0)
    assert read(attenuation_symmetry=0.2)[1] < 0.9  # s != 1 breaks symmetry
    nope_locality = metrics.locality(metrics.position_attention(tiny_mlm("nope"), 32)).mean().item()
    assert nope_locality == pytest.approx((1 + 2 * sum(2.0**-d * (32 - d) for d in range(1, 32)) / 32) / 32, rel=1e-9)


@pytest.mark.parametrize("variant", QUERY_KEY_ROUTES + CONTENT_DEPENDENT)
def test_position_attention_refuses_query_dependent_encodings(variant):
    from hf_posenc import metrics

    with pytest.raises(ValueError, match="no attention from position alone"):
        metrics.position_attention(tiny_mlm(variant), 16)


def test_absolute_encodings_are_declared():
    """Left padding is refused exactly for the encodings whose outputs it would change (see the bad-input suite)."""
    assert ABSOLUTE == ["learned", "sinusoidal", "tupe", "fire"]


@pytest.mark.parametrize("variant", [name for name in ALL if name not in ABSOLUTE])
def test_left_padding_leaves_relative_encodings_unchanged(variant):
    model = tiny_mlm(variant).eval()
    ids = random_ids(1, 12)
    padded = torch.cat((torch.zeros(1, 5, dtype=torch.long), ids), dim=1)
    mask = torch.cat((torch.zeros(1, 5, dtype=torch.long), torch.ones(1, 12, dtype=torch.long)), dim=1)
    torch.testing.assert_close(
        model(padded, attention_mask=mask).logits[:, 5:], model(ids).logits, atol=1e-5, rtol=1e-5
    )

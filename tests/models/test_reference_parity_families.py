"""Reference parity of the encodings added after the locality/symmetry paper's thirteen (the contract of
test_reference_parity.py): rope's frequency family against transformers' rotary code (GPT-NeoX's partial rotation,
`modeling_rope_utils`' proportional RoPE and context-extension scalings, Llama's rotary embedding) bit for bit where
the package calls it, and the two-sided forget gate against the Forgetting Transformer's equation (its causal half) and
x-transformers' two-sided form (its right half), written here with explicit loops."""

import json
import math

import pytest
import torch
from conftest import random_ids, tiny_config, tiny_mlm
from transformers import AutoModel, AutoModelForMaskedLM, GPTNeoXConfig, LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding
from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb as neox_rotate
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as llama_rotate

FLOAT64 = dict(rtol=1e-9, atol=1e-10)
FLOAT32_ANGLES = dict(rtol=0.0, atol=2e-5)  # float32 angles up to ~100 rad
HEAD_DIM, HEADS, LENGTH = 16, 4, 40


def rope_position(**settings):
    """The rotary encoding of a 64-wide, 4-head (head_dim 16) model with `settings`."""
    return tiny_mlm("rope", hidden_size=64, **settings).posenc.position


def random_query_key():
    return (torch.randn(2, HEADS, LENGTH, HEAD_DIM, dtype=torch.float64) for _ in range(2))


# ------------------------------------------------------------------------------------------------ plain rope
def test_plain_rope_keeps_its_formula_and_is_transformers_within_one_ulp():
    """Models saved before the frequency family compute bit for bit what they computed: plain RoPE keeps
    theta^(-2k/d), which differs from transformers' 1/theta^(2k/d) by at most one float32 rounding."""
    position = rope_position(rope_theta=500.0)
    assert position.plain
    ours = position.inverse_frequencies()
    assert torch.equal(ours, 500.0 ** (-torch.arange(0, HEAD_DIM, 2, dtype=torch.float32) / HEAD_DIM))
    theirs, _ = LlamaRotaryEmbedding.compute_default_rope_parameters(
        LlamaConfig(hidden_size=64, num_attention_heads=HEADS, rope_theta=500.0)
    )
    torch.testing.assert_close(ours, theirs, rtol=2**-23, atol=0)


def test_a_rope_config_saved_without_the_new_settings_computes_as_before(tmp_path):
    model = tiny_mlm("rope").eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    for key in ("rope_partial_rotary_factor", "rope_frequency_fraction", "rope_context_scaling"):
        del saved[key]  # as a config.json written before these settings existed
    (tmp_path / "config.json").write_text(json.dumps(saved))
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert reloaded.posenc.position.plain
    ids = random_ids()
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)


# ---------------------------------------------------------------------------------------------- partial rotation
@pytest.mark.parametrize("factor", [0.25, 0.5, 0.75])
def test_partial_rotation_is_gpt_neox(factor):
    """GPT-NeoX's rotary embedding with `partial_rotary_factor` rotates the first int(d * factor) dimensions of each
    head (half-split among them) and passes the others through: same frequencies bit for bit, same rotated vectors."""
    position = rope_position(rope_partial_rotary_factor=factor)
    neox_config = GPTNeoXConfig(
        hidden_size=64, num_attention_heads=HEADS, rotary_pct=factor, max_position_embeddings=64, rope_theta=10000.0
    )
    assert neox_config.rope_parameters["partial_rotary_factor"] == factor
    their_frequencies, _ = GPTNeoXRotaryEmbedding.compute_default_rope_parameters(neox_config)
    assert position.rotary_dim == int(HEAD_DIM * factor)
    assert torch.equal(position.inverse_frequencies(), their_frequencies)

    query, key = random_query_key()
    cos, sin = GPTNeoXRotaryEmbedding(neox_config)(query, torch.arange(LENGTH)[None])
    their_query, their_key = neox_rotate(query, key, cos, sin)
    our_query, our_key = position.rotate(query, key, position.layer_context(LENGTH, "cpu", torch.float64))
    torch.testing.assert_close(our_query, their_query, **FLOAT32_ANGLES)
    torch.testing.assert_close(our_key, their_key, **FLOAT32_ANGLES)
    assert torch.equal(our_query[..., position.rotary_dim :], query[..., position.rotary_dim :])


# ------------------------------------------------------------------------------------------------------ p-RoPE
@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.75])
def test_p_rope_is_transformers_proportional_and_the_papers_truncation(fraction):
    """Barbero et al.'s p-RoPE: the pairs keep RoPE's frequencies theta^(-2k/d), the fraction p with the highest
    frequencies rotate and the others get frequency 0. Equal, bit for bit, to transformers' `proportional` RoPE
    (partial_rotary_factor = p); the unrotated pairs pass their dimensions through unchanged."""
    position = rope_position(rope_frequency_fraction=fraction)
    parameters = {"rope_type": "proportional", "rope_theta": 10000.0, "partial_rotary_factor": fraction}
    llama_config = LlamaConfig(hidden_size=64, num_attention_heads=HEADS, rope_parameters=parameters)
    theirs, _ = ROPE_INIT_FUNCTIONS["proportional"](llama_config, "cpu")
    ours = position.inverse_frequencies()
    assert torch.equal(ours, theirs)

    kept = math.floor(fraction * HEAD_DIM / 2)
    for pair in range(HEAD_DIM // 2):
        expected = 10000.0 ** (-2 * pair / HEAD_DIM) if pair < kept else 0.0
        assert ours[pair].item() == pytest.approx(expected, rel=1e-6, abs=0.0)
    query, key = random_query_key()
    our_query, _ = position.rotate(query, key, position.layer_context(LENGTH, "cpu", torch.float64))
    removed = [pair for pair in range(kept, HEAD_DIM // 2)] + [
        pair + HEAD_DIM // 2 for pair in range(kept, HEAD_DIM // 2)
    ]
    assert torch.equal(our_query[..., removed], query[..., removed])
    if kept:
        assert not torch.equal(our_query, query)


def test_zero_rope_is_nope_on_the_full_model():
    """0-RoPE rotates nothing: the model's outputs are those of the same weights without any positional encoding."""
    rope = tiny_mlm("rope", rope_frequency_fraction=0.0).eval()
    nope = AutoModelForMaskedLM.from_config(tiny_config("nope")).eval()
    nope.load_state_dict(rope.state_dict())
    ids = random_ids()
    with torch.no_grad():
        torch.testing.assert_close(rope(ids).logits, nope(ids).logits, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------- context extension
SCALINGS = {
    "linear": {"rope_type": "linear", "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "factor": 4.0},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
    "longrope": {
        "rope_type": "longrope",
        "factor": 4.0,
        "original_max_position_embeddings": 16,
        "short_factor": [1.0, 1.0, 1.1, 1.2, 1.5, 2.0, 3.0, 4.0],
        "long_factor": [1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0],
    },
    "llama3": {
        "rope_type": "llama3",
        "factor": 8.0,
        "original_max_position_embeddings": 16,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
    },
}


def llama_for(scaling: dict) -> LlamaConfig:
    """The Llama config whose rotary embedding applies `scaling` to a model trained on the scaling's original length
    (16 tokens; dynamic NTK reads that length as max_position_embeddings)."""
    original = scaling.get("original_max_position_embeddings", 16)
    return LlamaConfig(
        hidden_size=64,
        num_attention_heads=HEADS,
        max_position_embeddings=original,
        rope_parameters={**scaling, "rope_theta": 10000.0},
    )


@pytest.mark.parametrize("rope_type", list(SCALINGS))
def test_context_scalings_are_transformers_bit_for_bit(rope_type):
    """Each scaling's frequencies and cos/sin factor are transformers' ROPE_INIT_FUNCTIONS' (at a length within the
    original one and beyond it, which is where dynamic NTK and LongRoPE change), and the rotated queries and keys are
    those of Llama's rotary embedding with that scaling."""
    scaling = SCALINGS[rope_type]
    # dynamic NTK starts at the model's length unless told the original one
    position = rope_position(max_position_embeddings=16, rope_context_scaling=scaling)
    for seq_len in (12, LENGTH):
        theirs, their_factor = ROPE_INIT_FUNCTIONS[rope_type](llama_for(scaling), "cpu", seq_len=seq_len)
        ours, our_factor = position.rotation_parameters(seq_len, "cpu")
        assert torch.equal(ours, theirs) and our_factor == their_factor, seq_len
    if rope_type in ("yarn", "longrope"):
        assert their_factor > 1  # the cos/sin factor is exercised

    query, key = random_query_key()
    cos, sin = LlamaRotaryEmbedding(llama_for(scaling))(query, torch.arange(LENGTH)[None])
    their_query, their_key = llama_rotate(query, key, cos, sin)
    our_query, our_key = position.rotate(query, key, position.layer_context(LENGTH, "cpu", torch.float64))
    torch.testing.assert_close(our_query, their_query, **FLOAT32_ANGLES)
    torch.testing.assert_close(our_key, their_key, **FLOAT32_ANGLES)


def test_p_rope_under_a_scaling_zeroes_the_same_pairs_of_the_scaled_frequencies():
    scaling = SCALINGS["yarn"]
    position = rope_position(max_position_embeddings=16, rope_frequency_fraction=0.5, rope_context_scaling=scaling)
    scaled, _ = ROPE_INIT_FUNCTIONS["yarn"](llama_for(scaling), "cpu")
    expected = torch.cat((scaled[:4], torch.zeros(4)))
    assert torch.equal(position.inverse_frequencies(), expected)


def test_a_scaling_survives_save_and_reload(tmp_path):
    model = tiny_mlm("rope", hidden_size=64, rope_context_scaling=SCALINGS["longrope"]).eval()
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert reloaded.config.rope_context_scaling == SCALINGS["longrope"]
    ids = random_ids(1, 30)  # beyond the original 16 tokens: the long factors
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)
        plain = tiny_mlm("rope", hidden_size=64).posenc.position
        assert not torch.equal(plain.inverse_frequencies(30), model.posenc.position.inverse_frequencies(30))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"rope_partial_rotary_factor": 0.5, "rope_frequency_fraction": 0.5}, "set one of them below 1, not both"),
        ({"rope_partial_rotary_factor": 0.375}, r"int\(8 \* 0.375\) = 3 is odd or zero"),
        ({"rope_partial_rotary_factor": 0.1}, "is odd or zero"),
        ({"rope_partial_rotary_factor": 0.0}, "rope_partial_rotary_factor must be a number with 0 <"),
        ({"rope_frequency_fraction": 1.5}, "rope_frequency_fraction must be a number with 0 <="),
        ({"rope_frequency_fraction": "half"}, "rope_frequency_fraction must be a number"),
        ({"rope_context_scaling": {"rope_type": "ntk", "factor": 2}}, "rope_type is one of linear, dynamic, yarn"),
        ({"rope_context_scaling": "yarn"}, "must be a dict whose rope_type"),
        ({"rope_context_scaling": {"rope_type": "yarn"}}, r"lacks \['factor'\]"),
        ({"rope_context_scaling": {"rope_type": "linear", "factor": 2, "beta_fast": 3}}, "keys it does not use"),
        ({"rope_context_scaling": {"rope_type": "linear", "factor": 0.5}}, "factor must be >= 1"),
        ({"rope_context_scaling": {"rope_type": "linear", "factor": float("inf")}}, "finite number > 0"),
        (
            {"rope_context_scaling": {"rope_type": "longrope", "factor": 2, "short_factor": [1], "long_factor": [1]}},
            "must list 4 numbers",
        ),
        (
            {"rope_context_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1}},
            "low_freq_factor must be below high_freq_factor",
        ),
    ],
)
def test_bad_frequency_settings_are_refused_with_the_fix(settings, message):
    with pytest.raises(ValueError, match=message):
        tiny_config("rope", **settings)


# ------------------------------------------------------------------------------------------- the forget gate
def gated_model(**settings):
    model = AutoModel.from_config(tiny_config("forgetting", **settings)).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        model.position.gate_weight.normal_(std=0.5)  # gates far from 1, so the decay is visible
    return model


def fox_bias_by_loops(states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, side: str) -> torch.Tensor:
    """[H, T, T] (one sequence) from the equations, entry by entry: left (FoX, Lin et al. 2025, eq. 3-4),
    D_ij = sum over l = j+1..i of log sigmoid(w.x_l + b) for j <= i; right (x-transformers'
    DataDependentAlibi(causal=False), its reversed cumulative sum), D_ij = sum over l = i+1..j for j >= i."""
    weight, bias, states = weight.detach(), bias.detach(), states.detach()
    heads, length = weight.shape[0], states.shape[0]
    expected = torch.full((heads, length, length), float("nan"), dtype=torch.float64)
    for head in range(heads):
        log_gate = [
            math.log(1 / (1 + math.exp(-(float(weight[head] @ states[t]) + float(bias[head]))))) for t in range(length)
        ]
        for i in range(length):
            for j in range(length):
                if side == "left" and j <= i:
                    expected[head, i, j] = sum(log_gate[j + 1 : i + 1])
                elif side == "right" and j >= i:
                    expected[head, i, j] = sum(log_gate[i + 1 : j + 1])
    return expected


@pytest.mark.parametrize("tied", [True, False])
def test_forget_gate_halves_follow_fox_and_its_two_sided_form(tied):
    model = gated_model(forgetting_tied_gates=tied)
    position = model.position
    states = torch.randn(1, 14, 32, dtype=torch.float64)
    ours = position.bias_from_hidden_states(states, 1).double()[0]
    left_side, right_side = 0, 0 if tied else 1
    left = fox_bias_by_loops(states[0], position.gate_weight[1, left_side], position.gate_bias[1, left_side], "left")
    right = fox_bias_by_loops(
        states[0], position.gate_weight[1, right_side], position.gate_bias[1, right_side], "right"
    )
    is_left = ~left[0].isnan()
    torch.testing.assert_close(ours[:, is_left], left[:, is_left], rtol=1e-5, atol=1e-5)  # float32 cumulative sums
    is_right = ~right[0].isnan()
    torch.testing.assert_close(ours[:, is_right], right[:, is_right], rtol=1e-5, atol=1e-5)
    assert (ours <= 0).all() and (ours.diagonal(dim1=-2, dim2=-1) == 0).all()
    if tied:  # one gate for both sides: D_ij = D_ji, whatever the content
        torch.testing.assert_close(ours, ours.transpose(-1, -2), rtol=0, atol=0)
        assert position.symmetric
    else:
        assert not torch.allclose(ours, ours.transpose(-1, -2), atol=1e-3)
        assert not position.symmetric


@pytest.mark.parametrize("pre_layer_norm", [False, True])
def test_each_layer_reads_its_own_attention_input(pre_layer_norm):
    """The attention every layer returns is softmax(q.k / sqrt(d) + D) with D from that layer's gates applied to
    that layer's attention input (the layer's input, layer-normed first when pre-LN)."""
    model = gated_model(pre_layer_norm=pre_layer_norm)
    ids = random_ids(1, 12)
    with torch.no_grad():
        outputs = model(ids, output_attentions=True, output_hidden_states=True)
        for index, layer in enumerate(model.layers):
            states = outputs.hidden_states[index]
            attention_input = layer.attention_norm(states) if pre_layer_norm else states
            projected = layer.attention.query_key_value(attention_input).view(1, 12, 3, 4, 8).permute(2, 0, 3, 1, 4)
            logits = projected[0] @ projected[1].transpose(-1, -2) / math.sqrt(8)
            gates = model.position
            bias = torch.empty(1, 4, 12, 12, dtype=torch.float64)
            bias[0] = fox_bias_by_loops(
                attention_input[0], gates.gate_weight[index, 0], gates.gate_bias[index, 0], "left"
            ).nan_to_num(0) + fox_bias_by_loops(
                attention_input[0], gates.gate_weight[index, 0], gates.gate_bias[index, 0], "right"
            ).nan_to_num(0)
            expected = torch.softmax(logits + bias, dim=-1)
            torch.testing.assert_close(outputs.attentions[index], expected, rtol=1e-5, atol=1e-5)


def test_forget_gates_train_and_refuse_position_only_attention():
    model = tiny_mlm("forgetting", forgetting_tied_gates=False)
    ids = random_ids()
    model(ids, labels=ids).loss.backward()
    gates = model.posenc.position
    assert gates.gate_weight.grad.abs().sum() > 0 and gates.gate_bias.grad.abs().sum() > 0
    assert gates.gate_weight.shape == (2, 2, 4, 32)
    assert torch.equal(gates.gate_bias.detach(), torch.full((2, 2, 4), 5.0))  # the configured start
    with pytest.raises(ValueError, match="no attention from position alone"):
        gates.bias(16, "cpu")
    with pytest.raises(ValueError, match="forgetting_gate_bias_init must be a finite number"):
        tiny_config("forgetting", forgetting_gate_bias_init=float("nan"))
    with pytest.raises(ValueError, match="forgetting_tied_gates must be true or false"):
        tiny_config("forgetting", forgetting_tied_gates="yes")


# ------------------------------------------------------------------------------------------------------- sandwich
def sandwich_by_loops(num_heads: int, dimension: int, length: int) -> torch.Tensor:
    """NeMo's bidirectional SandwichRelativePositionEmbedding written from its equation, one (h, i, j) at a time in
    float64: (sum over k = 1..d'/2 of cos((i - j) / 10000^(2k/d')) - d'/2) / (8 h / H), heads h = 1..H."""
    bias = torch.empty(num_heads, length, length, dtype=torch.float64)
    for head in range(1, num_heads + 1):
        for i in range(length):
            for j in range(length):
                products = sum(math.cos((i - j) / 10000 ** (2 * k / dimension)) for k in range(1, dimension // 2 + 1))
                bias[head - 1, i, j] = (products - dimension / 2) / (8 * head / num_heads)
    return bias


@pytest.mark.parametrize(
    "settings, dimension", [({}, 16), ({"sandwich_dimension": 6}, 6), ({"sandwich_dimension": 40}, 40)]
)
def test_sandwich_bias_is_nemos_equation(settings, dimension):
    position = tiny_mlm("sandwich", hidden_size=64, **settings).posenc.position  # 4 heads of 16
    assert not list(position.parameters())
    ours = position.bias(LENGTH, "cpu")
    assert ours.dtype == torch.float32 and ours.shape == (HEADS, LENGTH, LENGTH)
    expected = sandwich_by_loops(HEADS, dimension, LENGTH)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-5, atol=2e-5)
    by_distance = position.bias_by_distance(LENGTH, "cpu")
    distance = torch.arange(LENGTH)[:, None] - torch.arange(LENGTH)[None, :]
    torch.testing.assert_close(by_distance[:, distance + LENGTH - 1], ours, rtol=0, atol=0)


def test_sandwich_special_cases_zero_diagonal_symmetry_and_head_scale():
    position = tiny_mlm("sandwich", hidden_size=64).posenc.position
    assert position.symmetric and position.extrapolates and not position.absolute and not position.length_dependent
    bias = position.bias(300, "cpu")  # beyond max_position_embeddings = 48: it extrapolates
    assert torch.equal(bias.diagonal(dim1=-2, dim2=-1), torch.zeros(HEADS, 300))
    assert torch.equal(bias, bias.transpose(-1, -2))
    assert (bias[:, ~torch.eye(300, dtype=torch.bool)] < 0).all()
    # Head h is head 1 divided by h: (8 * 1 / H) / (8 * h / H).
    for head in range(1, HEADS + 1):
        torch.testing.assert_close(bias[head - 1] * head, bias[0], rtol=1e-6, atol=1e-6)
    # Toeplitz: a function of i - j only.
    torch.testing.assert_close(bias[:, 1:, 1:], bias[:, :-1, :-1], rtol=0, atol=0)


def test_sandwich_in_the_model_adds_its_bias_to_the_scaled_logits():
    model = AutoModel.from_config(tiny_config("sandwich", hidden_size=64)).double().eval()
    ids = random_ids(1, 12)
    outputs = model(ids, output_attentions=True, output_hidden_states=True)
    bias = sandwich_by_loops(HEADS, HEAD_DIM, 12)
    layer = model.layers[0]
    projected = layer.attention.query_key_value(outputs.hidden_states[0]).view(1, 12, 3, HEADS, HEAD_DIM)
    query, key = projected.permute(2, 0, 3, 1, 4)[:2]
    expected = torch.softmax(query @ key.transpose(-1, -2) / math.sqrt(HEAD_DIM) + bias, dim=-1)
    torch.testing.assert_close(outputs.attentions[0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "settings, problem",
    [
        ({"sandwich_dimension": 7}, "sandwich_dimension must be even"),
        ({"sandwich_dimension": 0}, "sandwich_dimension must be a whole number >= 2"),
        ({"sandwich_dimension": 2.0}, "sandwich_dimension must be a whole number >= 2"),
        ({"hidden_size": 36, "num_attention_heads": 4}, "head dimension, 9, which is odd"),
    ],
)
def test_sandwich_refuses_bad_dimensions(settings, problem):
    with pytest.raises(ValueError, match=problem):
        tiny_config("sandwich", **settings)

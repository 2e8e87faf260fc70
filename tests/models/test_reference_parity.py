"""Reference parity: each positional encoding computes what its reference computes.

The reference is transformers' own implementation where one is installed (BERT, T5, BLOOM, Llama, RoFormer,
DeBERTa-v2, Wav2Vec2-BERT), otherwise the paper's equation or the authors' listing, written here with explicit loops
or independent tensor code (never with hf_posenc's helpers). Everything runs in float64, so a difference is either
float64 round-off or a float32 step that the package takes on purpose:

- the bias route returns float32 (`BiasEncoding.bias`), and FIRE also computes its MLP input in float32;
- rope's cos/sin tables and the sinusoidal table are built in float32 and then cast (as Llama and RoFormer do);
- the eager attention path takes its softmax in float32 (`PosEncSelfAttention`), so the probabilities a float64
  model returns with `output_attentions=True` carry float32 round-off.

Those comparisons use the float32 tolerances below, orders of magnitude under any real deviation; all others
use FLOAT64.
"""

import math

import pytest
import torch
from conftest import random_ids, tiny_config, tiny_mlm
from transformers import AutoModel
from transformers.models.t5.modeling_t5 import T5Attention

from hf_posenc.positional_base import signed_distance

FLOAT64 = dict(rtol=1e-9, atol=1e-10)
FLOAT32 = dict(rtol=1e-6, atol=1e-6)  # one float32 rounding of values of order 1 to 10
FLOAT32_ANGLES = dict(rtol=0.0, atol=2e-5)  # float32 angles up to 40 rad: error up to ~T * 2^-23 per table entry


def tiny_model(variant: str, **overrides):
    """A tiny float64 encoder of `variant` in eval mode, every parameter moved off its initial value (LayerNorm
    weights no longer 1, biases no longer 0), so that a mis-wired parameter changes the output."""
    model = AutoModel.from_config(tiny_config(variant, **overrides)).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


# ------------------------------------------------------------------------------------------------------ learned
def bert_state_dict(package_state: dict, num_layers: int, hidden: int) -> dict:
    """The package's learned-position encoder as transformers' BertModel state dict (the fused [3*hidden, hidden]
    query_key_value rows are q, then k, then v)."""
    state = {
        "embeddings.word_embeddings.weight": package_state["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": package_state["position.position_embeddings.weight"],
        "embeddings.token_type_embeddings.weight": package_state["embeddings.token_type_embeddings.weight"],
        "embeddings.LayerNorm.weight": package_state["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": package_state["embeddings.LayerNorm.bias"],
    }
    renames = {
        "attention_output": "attention.output.dense",
        "attention_norm": "attention.output.LayerNorm",
        "intermediate": "intermediate.dense",
        "output": "output.dense",
        "output_norm": "output.LayerNorm",
    }
    for layer in range(num_layers):
        ours, theirs = f"layers.{layer}.", f"encoder.layer.{layer}."
        for kind in ("weight", "bias"):
            fused = package_state[f"{ours}attention.query_key_value.{kind}"]
            for index, name in enumerate(("query", "key", "value")):
                state[f"{theirs}attention.self.{name}.{kind}"] = fused[index * hidden : (index + 1) * hidden]
            for our_name, their_name in renames.items():
                state[f"{theirs}{their_name}.{kind}"] = package_state[f"{ours}{our_name}.{kind}"]
    return state


@pytest.mark.parametrize("bert_attention", ["eager", "sdpa"])
def test_learned_encoder_is_bert(bert_attention):
    """transformers' BertModel (post-LN, gelu, learned absolute positions; no pooler) with the package's weights
    gives the package's last_hidden_state on a right-padded batch with two segments (the package runs SDPA)."""
    from transformers import BertConfig, BertModel

    model = tiny_model("learned")
    config = model.config
    bert_config = BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=config.pad_token_id,
    )
    bert_config._attn_implementation = bert_attention
    bert = BertModel(bert_config, add_pooling_layer=False).double().eval()
    bert.load_state_dict(bert_state_dict(model.state_dict(), config.num_hidden_layers, config.hidden_size))

    ids = random_ids(3, 20)
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 14:] = 0
    mask[2, 7:] = 0
    segments = torch.zeros(3, 20, dtype=torch.long)
    segments[:, 10:] = 1
    with torch.no_grad():
        ours = model(ids, attention_mask=mask, token_type_ids=segments).last_hidden_state
        theirs = bert(ids, attention_mask=mask, token_type_ids=segments).last_hidden_state
    torch.testing.assert_close(ours, theirs, **FLOAT64)


# ----------------------------------------------------------------------------------------------------------- t5
@pytest.mark.parametrize("num_buckets, max_distance", [(16, 32), (32, 128)])
def test_t5_buckets_match_transformers(num_buckets, max_distance):
    """transformers' T5Attention._relative_position_bucket(j - i, bidirectional=True): read back from the package's
    bias with a table whose entry for bucket b is b, at a length that reaches the logarithmic buckets and the clamp
    to the last bucket of each direction."""
    from transformers.models.t5.modeling_t5 import T5Attention

    position = tiny_model(
        "t5", relative_attention_num_buckets=num_buckets, relative_attention_max_distance=max_distance
    ).position
    seq_len = 2 * max_distance + 8
    with torch.no_grad():
        position.relative_attention_bias.weight.copy_(torch.arange(num_buckets)[:, None].expand(-1, 4))
    ours = position.bias(seq_len, "cpu")

    positions = torch.arange(seq_len)
    key_minus_query = positions[None, :] - positions[:, None]
    theirs = T5Attention._relative_position_bucket(
        key_minus_query, bidirectional=True, num_buckets=num_buckets, max_distance=max_distance
    )
    for head in range(4):
        assert torch.equal(ours[head].long(), theirs)
    # The comparison covers every bucket (but bucket num_buckets/2: key to the right at distance 0), so the
    # logarithmic range and the clamp of distances >= max_distance to the last bucket of each side.
    assert set(theirs.unique().tolist()) == set(range(num_buckets)) - {num_buckets // 2}
    assert (key_minus_query.abs() >= max_distance).any()


def test_t5_bias_matches_compute_bias():
    """transformers' T5Attention.compute_bias of an encoder layer (has_relative_attention_bias=True) with the
    package's `relative_attention_bias` table. The bias itself only: the package also scales content logits by
    1/sqrt(d), which T5 does not (a documented choice)."""
    from transformers import T5Config
    from transformers.models.t5.modeling_t5 import T5Attention

    position = tiny_model("t5").position  # 16 buckets up to distance 32
    t5_config = T5Config(
        d_model=32, d_kv=8, num_heads=4, relative_attention_num_buckets=16, relative_attention_max_distance=32
    )
    t5 = T5Attention(t5_config, has_relative_attention_bias=True).double()
    with torch.no_grad():
        t5.relative_attention_bias.weight.copy_(position.relative_attention_bias.weight)
    seq_len = 80
    theirs = t5.compute_bias(seq_len, seq_len)[0]
    ours = position.bias(seq_len, "cpu")
    # The bias route returns float32: the same table entries, rounded once.
    torch.testing.assert_close(ours, theirs.float(), rtol=0, atol=0)


# -------------------------------------------------------------------------------------------------------- alibi
@pytest.mark.parametrize("num_heads", range(1, 17))
def test_alibi_matches_bloom(num_heads):
    """transformers' BLOOM `build_alibi_tensor` (slope_h * key_position, its causal form) gives the slopes, for
    power-of-two head counts and others; the package's symmetric bias is then -m_h * |i - j| (Press et al. 2022,
    symmetric as in MosaicBERT), written with loops."""
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    position = tiny_model(
        "alibi", hidden_size=4 * num_heads, num_attention_heads=num_heads, num_hidden_layers=1
    ).position
    seq_len = 12
    alibi = build_alibi_tensor(torch.ones(1, seq_len), num_heads, torch.float64)[:, 0, :]  # [H, T]
    slopes = alibi[:, 1]  # BLOOM computes in float32
    torch.testing.assert_close(alibi, slopes[:, None] * torch.arange(seq_len, dtype=torch.float64), **FLOAT32)
    torch.testing.assert_close(position.slopes[0].double(), slopes, **FLOAT32)

    expected = torch.empty(num_heads, seq_len, seq_len, dtype=torch.float64)
    for head in range(num_heads):
        for i in range(seq_len):
            for j in range(seq_len):
                expected[head, i, j] = -slopes[head] * abs(i - j)
    torch.testing.assert_close(position.bias(seq_len, "cpu").double(), expected, **FLOAT32)


# --------------------------------------------------------------------------------------------------------- rope
@pytest.mark.parametrize("theta", [10000.0, 500.0])
def test_rope_matches_llama(theta):
    """transformers' LlamaRotaryEmbedding and apply_rotary_pos_emb (half-split layout) rotate random queries and
    keys as the package does. Both build the cos/sin tables in float32."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    position = tiny_model("rope", hidden_size=64, rope_theta=theta).position  # 4 heads of 16
    seq_len, head_dim = 40, 16
    llama_config = LlamaConfig(
        hidden_size=64, num_attention_heads=4, head_dim=head_dim, rope_theta=theta, max_position_embeddings=64
    )
    assert llama_config.rope_parameters["rope_theta"] == theta
    query = torch.randn(2, 4, seq_len, head_dim, dtype=torch.float64)
    key = torch.randn(2, 4, seq_len, head_dim, dtype=torch.float64)
    cos, sin = LlamaRotaryEmbedding(llama_config)(query, torch.arange(seq_len)[None])
    their_query, their_key = apply_rotary_pos_emb(query, key, cos, sin)
    our_query, our_key = position.rotate(query, key, position.layer_context(seq_len, "cpu", torch.float64))
    torch.testing.assert_close(our_query, their_query, **FLOAT32_ANGLES)
    torch.testing.assert_close(our_key, their_key, **FLOAT32_ANGLES)


def test_rope_matches_roformer_interleaved_up_to_a_permutation():
    """transformers' RoFormer (RoFormerSinusoidalPositionalEmbedding and
    RoFormerSelfAttention.apply_rotary_position_embeddings) rotates pairs of adjacent dimensions (2k, 2k + 1); the
    package (as Llama) rotates (k, k + d/2). With each head's dimensions permuted so that those pairs correspond,
    the rotated vectors and the scores q_rot . k_rot^T are the same (RoFormer's base is fixed at 10000)."""
    from transformers.models.roformer.modeling_roformer import (
        RoFormerSelfAttention,
        RoFormerSinusoidalPositionalEmbedding,
    )

    position = tiny_model("rope", hidden_size=64, rope_theta=10000.0).position
    seq_len, head_dim = 40, 16
    table = RoFormerSinusoidalPositionalEmbedding(seq_len, head_dim)
    with torch.no_grad():
        table.weight.copy_(table.create_weight())
    sinusoidal_pos = table(torch.Size([1, seq_len]))[None, None]  # [1, 1, T, d]: sin of each pair, then cos

    # interleaved[2k] = half_split[k], interleaved[2k + 1] = half_split[k + d/2]
    half = head_dim // 2
    permutation = torch.tensor([index for pair in range(half) for index in (pair, pair + half)])
    query = torch.randn(2, 4, seq_len, head_dim, dtype=torch.float64)
    key = torch.randn(2, 4, seq_len, head_dim, dtype=torch.float64)
    their_query, their_key = RoFormerSelfAttention.apply_rotary_position_embeddings(
        sinusoidal_pos, query[..., permutation], key[..., permutation]
    )
    our_query, our_key = position.rotate(query, key, position.layer_context(seq_len, "cpu", torch.float64))
    torch.testing.assert_close(our_query[..., permutation], their_query, **FLOAT32_ANGLES)
    torch.testing.assert_close(our_key[..., permutation], their_key, **FLOAT32_ANGLES)
    their_scores = their_query @ their_key.transpose(-1, -2)
    our_scores = our_query @ our_key.transpose(-1, -2)
    torch.testing.assert_close(our_scores, their_scores, rtol=0.0, atol=1e-4)
    # Without the permutation the layouts disagree: the check above is not vacuous.
    unpermuted, _ = RoFormerSelfAttention.apply_rotary_position_embeddings(sinusoidal_pos, query, key)
    assert (unpermuted - our_query).abs().max() > 0.1


# ------------------------------------------------------------------------------------------------------ deberta
@pytest.mark.parametrize(
    "position_buckets, max_relative_positions, seq_len", [(8, 32, 100), (16, 64, 150), (256, 512, 600)]
)
def test_deberta_buckets_match_transformers(position_buckets, max_relative_positions, seq_len):
    """transformers' DeBERTa-v2 build_relative_position (with make_log_bucket_position) and the index
    clamp(delta + buckets, 0, 2 * buckets - 1) that disentangled_attention_bias gathers with give the package's
    bucket index of every (query, key) pair, at lengths that reach the logarithmic buckets and the clamp."""
    from transformers.models.deberta_v2.modeling_deberta_v2 import build_relative_position

    position = tiny_model(
        "deberta",
        position_buckets=position_buckets,
        max_relative_positions=max_relative_positions,
        num_hidden_layers=1,
    ).position
    states = torch.zeros(1, seq_len, 1)
    relative = build_relative_position(
        states, states, bucket_size=position_buckets, max_position=max_relative_positions
    )[0]
    theirs = torch.clamp(relative + position_buckets, 0, 2 * position_buckets - 1)
    _, rows, _ = position.layer_context(seq_len, "cpu", torch.float64)  # a row per distance i - j
    ours = rows[signed_distance(seq_len, "cpu") + seq_len - 1]
    assert torch.equal(ours, theirs)
    assert relative.abs().max() > position_buckets // 2  # logarithmic buckets reached
    if position_buckets < 256:
        assert (relative + position_buckets > 2 * position_buckets - 1).any()  # and the clamp


def deberta_attention_pair(position_to_content: str):
    """A one-layer package DeBERTa model and transformers' DisentangledSelfAttention and DebertaV2Encoder (for its
    relative-embedding LayerNorm and relative positions) with the same weights. Head dimension 12, so that the
    scale sqrt(3 * 12) = 6 that transformers computes in float32 is exact."""
    from transformers import DebertaV2Config
    from transformers.models.deberta_v2.modeling_deberta_v2 import DebertaV2Encoder, DisentangledSelfAttention

    model = tiny_model(
        "deberta",
        hidden_size=48,
        num_attention_heads=4,
        num_hidden_layers=1,
        deberta_position_to_content=position_to_content,
    )
    config = model.config
    their_config = DebertaV2Config(
        hidden_size=48,
        num_attention_heads=4,
        num_hidden_layers=1,
        intermediate_size=config.intermediate_size,
        relative_attention=True,
        position_buckets=config.position_buckets,
        max_relative_positions=config.max_relative_positions,
        pos_att_type=["p2c", "c2p"],
        share_att_key=False,
        norm_rel_ebd="layer_norm",
        layer_norm_eps=config.layer_norm_eps,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    attention = DisentangledSelfAttention(their_config).double().eval()
    encoder = DebertaV2Encoder(their_config).double().eval()
    position, hidden = model.position, config.hidden_size
    fused = model.layers[0].attention.query_key_value
    with torch.no_grad():
        for index, projection in enumerate((attention.query_proj, attention.key_proj, attention.value_proj)):
            projection.weight.copy_(fused.weight[index * hidden : (index + 1) * hidden])
            projection.bias.copy_(fused.bias[index * hidden : (index + 1) * hidden])
        attention.pos_key_proj.load_state_dict(position.position_key[0].state_dict())
        attention.pos_query_proj.load_state_dict(position.position_query[0].state_dict())
        encoder.rel_embeddings.load_state_dict(position.relative_embeddings.state_dict())
        encoder.LayerNorm.load_state_dict(position.relative_norm.state_dict())
    return model, attention, encoder


def deberta_probabilities(position_to_content: str, seq_len: int = 40):
    """(the package model's attentions[0], softmax in float64 of the package's own logits, transformers'
    attention probabilities) on the same hidden states."""
    model, attention, encoder = deberta_attention_pair(position_to_content)
    with torch.no_grad():
        outputs = model(random_ids(2, seq_len), output_attentions=True, output_hidden_states=True)
        hidden_states = outputs.hidden_states[0]
        _, theirs = attention(
            hidden_states,
            encoder.get_attention_mask(torch.ones(2, seq_len)),
            output_attentions=True,
            relative_pos=encoder.get_rel_pos(hidden_states),
            rel_embeddings=encoder.get_rel_embedding(),
        )
        # The package layer's pieces, to compare in float64 (its eager softmax is float32).
        layer, position = model.layers[0].attention, model.position
        qkv = layer.query_key_value(hidden_states).view(2, seq_len, 3, 4, 12)
        query, key, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        context = position.layer_context(seq_len, "cpu", torch.float64)
        torch.testing.assert_close(context[0], encoder.get_rel_embedding(), **FLOAT64)
        logits = (query @ key.transpose(-1, -2) + position.scores(query, key, 0, context)) * layer.scaling
    return outputs.attentions[0], logits.softmax(-1), theirs


def test_deberta_official_matches_disentangled_self_attention():
    """transformers' DeBERTa-v2 DisentangledSelfAttention (c2p and p2c, separate position projections, layer-normed
    relative embeddings, scale 1/sqrt(3d)) gives the package's attention probabilities with the default
    deberta_position_to_content="official": to float64 precision from the layer's logits, and to float32 precision
    from the model's float32 eager softmax."""
    model_attentions, ours, theirs = deberta_probabilities("official")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    torch.testing.assert_close(model_attentions, theirs, rtol=0, atol=1e-6)


def test_deberta_paper_differs_from_transformers():
    """deberta_position_to_content="paper" (the paper's printed k_j . Qr[delta(j, i)]) is not what transformers
    computes (k_j . Qr[delta(i, j)]): the probabilities differ by up to 0.072 on this seed, far above the 1e-12
    at which "official" matches."""
    model_attentions, ours, theirs = deberta_probabilities("paper")
    torch.testing.assert_close(model_attentions, ours, rtol=0, atol=1e-6)
    assert (ours - theirs).abs().max() > 0.01


# -------------------------------------------------------------------------------------------------- shaw, huang
def test_shaw_matches_wav2vec2_bert_relative_key():
    """transformers' Wav2Vec2-BERT position_embeddings_type="relative_key" (the Shaw et al. 2018 query term, the
    one transformers model that still has it after v5 removed BERT's relative_key) with left = right = k. Its table
    is indexed by clamp(j - i, -k, k) + k, the package's by clamp(i - j, -k, k) + k: the same table reversed.
    transformers scales the term by 1/sqrt(d); the package scales all logits by it afterwards."""
    from transformers import Wav2Vec2BertConfig
    from transformers.models.wav2vec2_bert.modeling_wav2vec2_bert import (
        Wav2Vec2BertSelfAttention,
        _apply_relative_key_position_encoding,
    )

    position = tiny_model("shaw").position  # k = 8, 2 layers, 4 heads of 8
    k, head_dim, seq_len, layer = 8, 8, 30, 1
    their_config = Wav2Vec2BertConfig(
        hidden_size=32,
        num_attention_heads=4,
        position_embeddings_type="relative_key",
        left_max_position_embeddings=k,
        right_max_position_embeddings=k,
    )
    module = Wav2Vec2BertSelfAttention(their_config).double()
    with torch.no_grad():
        module.distance_embedding.weight.copy_(position.distance_embeddings[layer].flip(0))
    query = torch.randn(2, 4, seq_len, head_dim, dtype=torch.float64)
    key = torch.randn(2, 4, seq_len, head_dim, dtype=torch.float64)
    _, theirs = _apply_relative_key_position_encoding(module, query, key)
    ours = position.scores(query, key, layer, position.layer_context(seq_len, "cpu", torch.float64))
    torch.testing.assert_close(ours / math.sqrt(head_dim), theirs, **FLOAT64)


@pytest.mark.parametrize("variant", ["shaw", "huang"])
def test_shaw_and_huang_follow_their_equations(variant):
    """Shaw et al. 2018, eq. 5: e_ij = q_i . k_j + q_i . a_ij with a_ij = w[clip(j - i, k)]; Huang et al. 2020
    (method 4, BERT's former relative_key_query) adds k_j . a_ij. Written with loops over i, j; `scores` returns
    the position terms. Mapping: the package's table row clamp(i - j, -k, k) + k is w[clip(j - i, k)], i.e.
    w[r] (r = -k..k) = table[k - r]."""
    position = tiny_model(variant).position
    k, layer, seq_len = 8, 1, 20
    table = position.distance_embeddings[layer].detach()
    query = torch.randn(2, 4, seq_len, 8, dtype=torch.float64)
    key = torch.randn(2, 4, seq_len, 8, dtype=torch.float64)

    def w(relative: int) -> torch.Tensor:  # Shaw's w_r for r = clip(j - i, k)
        return table[k - max(-k, min(k, relative))]

    expected = torch.empty(2, 4, seq_len, seq_len, dtype=torch.float64)
    for i in range(seq_len):
        for j in range(seq_len):
            a_ij = w(j - i)
            expected[..., i, j] = query[..., i, :] @ a_ij
            if variant == "huang":
                expected[..., i, j] += key[..., j, :] @ a_ij
    ours = position.scores(query, key, layer, position.layer_context(seq_len, "cpu", torch.float64))
    torch.testing.assert_close(ours, expected, **FLOAT64)


# --------------------------------------------------------------------------------------------------- sinusoidal
def vaswani_table(seq_len: int, hidden_size: int) -> torch.Tensor:
    """Vaswani et al. 2017, section 3.5: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same)."""
    table = torch.empty(seq_len, hidden_size, dtype=torch.float64)
    for pos in range(seq_len):
        for i in range(hidden_size // 2):
            angle = pos / 10000 ** (2 * i / hidden_size)
            table[pos, 2 * i] = math.sin(angle)
            table[pos, 2 * i + 1] = math.cos(angle)
    return table


def test_sinusoidal_is_vaswani():
    """Vaswani et al. 2017's equation, with loops (the package builds the table in float32)."""
    position = tiny_model("sinusoidal", hidden_size=64).position
    ours = position.embeddings(40, "cpu", torch.float64)
    torch.testing.assert_close(ours, vaswani_table(40, 64), **FLOAT32_ANGLES)


@pytest.mark.parametrize("scale_embeddings", [True, False])
def test_sinusoidal_scale_embeddings(scale_embeddings):
    """Vaswani et al. 2017, section 3.4: the token embeddings are multiplied by sqrt(d_model) before the positions
    are added (`sinusoidal_scale_embeddings=True`); False adds them unscaled. Read at the input of the
    embeddings' LayerNorm: token * scale + token_type[0] + PE."""
    model = tiny_model("sinusoidal", hidden_size=64, sinusoidal_scale_embeddings=scale_embeddings)
    captured = []
    model.embeddings.LayerNorm.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    ids = random_ids(2, 20)
    with torch.no_grad():
        model(ids)
    embeddings = model.embeddings
    scale = math.sqrt(64) if scale_embeddings else 1.0
    expected = (
        embeddings.word_embeddings.weight[ids] * scale
        + embeddings.token_type_embeddings.weight[0]
        + vaswani_table(20, 64)
    )
    torch.testing.assert_close(captured[0], expected.detach(), **FLOAT32_ANGLES)


# ------------------------------------------------------------------------------------------------------- kerple
def kerple_position(kernel: str, num_heads: int = 4, initial: bool = False):
    """The KERPLE encoding of a tiny float64 model; `initial`: with its parameters as initialised."""
    overrides = dict(kerple_kernel=kernel, hidden_size=max(32, num_heads), num_attention_heads=num_heads)
    if initial:
        return AutoModel.from_config(tiny_config("kerple", **overrides)).double().position
    return tiny_model("kerple", **overrides).position


@pytest.mark.parametrize("kernel", ["log", "power"])
def test_kerple_kernels_follow_the_reference(kernel):
    """chijames/KERPLE megatron/mpu/layers.py: ParallelKerpleLog's bias -p * log(1 + a * |i - j|) and
    ParallelKerplePower's -a * |i - j|^p (there a is the scale and p the exponent; here `scale` and `shape`),
    with loops, on parameters away from their floors."""
    position = kerple_position(kernel)
    with torch.no_grad():
        position.scale.copy_(torch.tensor([0.3, 1.7, 0.05, 1.0], dtype=torch.float64))
        position.shape.copy_(torch.tensor([0.2, 0.9, 1.6, 0.02], dtype=torch.float64))
    seq_len = 20
    expected = torch.empty(4, seq_len, seq_len, dtype=torch.float64)
    for head in range(4):
        scale, shape = position.scale[head].item(), position.shape[head].item()
        for i in range(seq_len):
            for j in range(seq_len):
                distance = abs(i - j)
                kernel_value = math.log(1 + shape * distance) if kernel == "log" else distance**shape
                expected[head, i, j] = -scale * kernel_value
    torch.testing.assert_close(position.bias(seq_len, "cpu").double(), expected, **FLOAT32)


@pytest.mark.parametrize("kernel", ["log", "power"])
def test_kerple_initial_values_follow_the_reference(kernel):
    """chijames/KERPLE megatron/mpu/layers.py: ParallelKerpleLog draws p (scale) ~ 2*U(0, 1) and a (shape) ~ U(0, 1);
    ParallelKerplePower draws the scale a ~ U(0, 1) and the exponent p ~ 2*U(0, 1). One value per head, all
    different. 64 heads, so that the upper half of a U(0, 2) range is reached with probability 1 - 2^-64."""
    position = kerple_position(kernel, num_heads=64, initial=True)
    scale, shape = position.scale.detach(), position.shape.detach()
    assert scale.unique().numel() == 64 and shape.unique().numel() == 64
    wide, narrow = (scale, shape) if kernel == "log" else (shape, scale)
    assert 0 <= wide.min() and wide.max() < 2 and wide.max() > 1, f"expected U(0, 2); got {wide}"
    assert 0 <= narrow.min() and narrow.max() < 1, f"expected U(0, 1); got {narrow}"


@pytest.mark.parametrize("kernel", ["log", "power"])
def test_kerple_clamps_in_place_and_keeps_the_gradient(kernel):
    """chijames/KERPLE: before each use `param.data = param.data.clamp(min=0.01)` (the power kernel's exponent also
    max=2): the stored values are projected, the bias uses the projected values, and the gradient reaches a
    parameter that had fallen below the floor."""
    position = kerple_position(kernel)
    with torch.no_grad():
        position.scale.copy_(torch.tensor([-0.3, 0.5, 1.2, 0.7], dtype=torch.float64))
        position.shape.copy_(torch.tensor([0.4, -0.2, 3.0, 0.6], dtype=torch.float64))
    bias = position.bias(20, "cpu")
    expected_scale = torch.tensor([0.01, 0.5, 1.2, 0.7], dtype=torch.float64)
    expected_shape = torch.tensor([0.4, 0.01, 3.0 if kernel == "log" else 2.0, 0.6], dtype=torch.float64)
    torch.testing.assert_close(position.scale.detach(), expected_scale, **FLOAT64)
    torch.testing.assert_close(position.shape.detach(), expected_shape, **FLOAT64)
    distance = (torch.arange(20)[:, None] - torch.arange(20)[None, :]).abs().double()
    scale, shape = expected_scale[:, None, None], expected_shape[:, None, None]
    kernel_value = torch.log1p(shape * distance) if kernel == "log" else distance**shape
    torch.testing.assert_close(bias.double(), -scale * kernel_value, **FLOAT32)

    bias.sum().backward()
    assert position.scale.grad[0] != 0  # the parameter that was below the floor
    assert position.shape.grad[1] != 0
    torch.testing.assert_close(position.scale.grad, -kernel_value.sum((-1, -2)), **FLOAT32)


# --------------------------------------------------------------------------------------------------------- fire
def fire_reference(c, init_L, L_multiplier, mlp, seq_length, eps=1e-6, features_only=False):
    """FIRE's listing (Li et al. 2023, appendix; as in mcleish7/arithmetic cramming/architectures/embeddings.py,
    class FIRE, in eval mode: positions 0..T-1). Causal: only entries j <= i are meaningful. [H, T, T]."""
    positions = torch.arange(seq_length, dtype=torch.float64)
    relative_distances = positions[:, None] - positions[None, :]
    threshold = torch.abs(L_multiplier * init_L)
    position_normalizer = torch.max(positions, threshold)[:, None]
    relative_distances = torch.log(torch.abs(c * relative_distances) + 1)
    position_normalizer = torch.log(torch.abs(c * position_normalizer) + 1)
    normalized_distances = relative_distances / (position_normalizer + eps)
    if features_only:
        return normalized_distances
    return mlp(normalized_distances.unsqueeze(-1)).permute(2, 0, 1)


def fire_position(**overrides):
    position = tiny_model("fire", **overrides).position
    return position, position.c, torch.tensor(float(position.init_threshold), dtype=torch.float64)


def make_identity_mlp_(mlp):
    """MLP weights that make every head output its input: relu(x) - relu(-x) = x."""
    with torch.no_grad():
        for parameter in mlp.parameters():
            parameter.zero_()
        mlp[0].weight[0, 0], mlp[0].weight[1, 0] = 1.0, -1.0
        mlp[2].weight[:, 0], mlp[2].weight[:, 1] = 1.0, -1.0


@pytest.mark.parametrize("init_threshold", [512.0, 4.0])
def test_fire_keys_on_the_left_match_the_reference(init_threshold):
    """Keys on the left (j <= i) are read exactly as the causal reference reads them, on every row, whether the
    threshold L is above the length (every query normalises by psi(L)) or below it (psi(max(i, L))): first with an
    MLP that outputs its input (the features themselves), then with the model's MLP."""
    seq_len = 20
    position, c, init_L = fire_position(fire_init_threshold=init_threshold)
    reference_args = (c, init_L, position.threshold_multiplier, position.mlp, seq_len)
    causal = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    with torch.no_grad():
        expected = fire_reference(*reference_args)
        ours = position.bias(seq_len, "cpu").double()
        torch.testing.assert_close(ours[:, causal], expected[:, causal], **FLOAT32)

        make_identity_mlp_(position.mlp)
        features = fire_reference(*reference_args, features_only=True)
        ours = position.bias(seq_len, "cpu").double()
        torch.testing.assert_close(ours[:, causal], features[causal].expand(4, -1), **FLOAT32)
        assert features[causal].abs().max() > 0.1


def test_fire_keys_on_the_right_are_the_mirror_image():
    """Keys on the right read the reference's features of the mirrored sequence (query T-1-i, key T-1-j), negated:
    normalised by the query's context on the right, with the sign that lets the MLP tell the sides apart."""
    seq_len = 20
    position, c, init_L = fire_position(fire_init_threshold=4.0)
    with torch.no_grad():
        make_identity_mlp_(position.mlp)
        features = fire_reference(c, init_L, position.threshold_multiplier, position.mlp, seq_len, features_only=True)
        ours = position.bias(seq_len, "cpu").double()[0]
    mirrored = -features.flip(0, 1)
    right = torch.ones(seq_len, seq_len, dtype=torch.bool).triu(1)
    torch.testing.assert_close(ours[right], mirrored[right], **FLOAT32)


def test_fire_padded_batch_uses_each_sequence_length():
    """With real_lengths, each sequence's bias on its real block equals the unpadded bias of its real length."""
    position, _, _ = fire_position(fire_init_threshold=4.0)
    lengths = [20, 13, 6]
    with torch.no_grad():
        batched = position.bias(20, "cpu", real_lengths=torch.tensor(lengths))
        for index, length in enumerate(lengths):
            single = position.bias(length, "cpu")
            torch.testing.assert_close(batched[index, :, :length, :length], single, rtol=0, atol=1e-7)


def reference_and_package_gradients(init_threshold: float, seq_len: int = 20):
    """d/d(L_multiplier) and d/dc of sum(weights * bias) over the causal part j <= i: (reference, package)."""
    position, c, init_L = fire_position(fire_init_threshold=init_threshold)
    weights = torch.randn(4, seq_len, seq_len, dtype=torch.float64).tril()
    multiplier = position.threshold_multiplier.detach().clone().requires_grad_(True)
    reference_c = c.detach().clone().requires_grad_(True)
    reference = fire_reference(reference_c, init_L, multiplier, position.mlp, seq_len)
    (reference * weights).sum().backward()
    (position.bias(seq_len, "cpu").double() * weights).sum().backward()
    return (multiplier.grad, reference_c.grad), (position.threshold_multiplier.grad, position.c.grad)


@pytest.mark.parametrize("init_threshold", [64.0, 4.0])
def test_fire_gradients_match_the_reference(init_threshold):
    """Above the length T = 20 (every query normalises by psi(L)) and below it (queries i < L normalise by psi(L)),
    the gradients of the left keys' biases with respect to the threshold multiplier and to c are the reference's:
    L = |m * L0| is learned through its multiplier, at the pace of the other parameters."""
    (reference_multiplier, reference_c), (our_multiplier, our_c) = reference_and_package_gradients(init_threshold)
    assert reference_multiplier != 0
    torch.testing.assert_close(our_multiplier, reference_multiplier, rtol=1e-5, atol=0)
    torch.testing.assert_close(our_c, reference_c, rtol=1e-5, atol=0)


# --------------------------------------------------------------------------------------------------------- tupe
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


def test_tupe_without_untying_keeps_positions_on_cls():
    position = tiny_mlm("tupe", tupe_untie_cls=False).posenc.position
    torch.nn.init.normal_(position.relative.relative_attention_bias.weight)
    assert position.position_embeddings.num_embeddings == 48
    assert position.relative.relative_attention_bias.num_embeddings == 16
    bias = position.bias(12, "cpu")
    torch.testing.assert_close(bias, position.correlation(12) + position.relative.bias(12, "cpu"))
    assert bias[:, 0, :].std(dim=-1).min() > 0.1


# --------------------------------------------------------------------------------------------------- attenuated
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


def test_adding_probabilities_to_the_logits_is_a_much_weaker_locality():
    """docs/variants.md's figure: without content, 16 tokens, w = 0.5, attention to self of an interior query is the
    Gaussian's 0.399 with the logit form and 0.087 with the seed repository's probability form."""
    from hf_posenc import metrics

    self_attention = {}
    for form in ("logit", "probability"):
        model = tiny_mlm("attenuated", attenuation_form=form, attenuation_strength=0.5)
        self_attention[form] = metrics.position_attention(model, 16)[0, 0, 8, 8].item()
    assert self_attention["logit"] == pytest.approx(0.3989, abs=1e-4)
    assert self_attention["probability"] == pytest.approx(0.0869, abs=1e-4)


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


# --------------------------------------------------------------------------------------------- the bias floor
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


# --------------------------------------------------------------------------------------------------------- nope
def test_nope_encoder_is_permutation_equivariant():
    """Without positions, attention is permutation-equivariant: permuting the input tokens (and their padding mask)
    permutes the outputs. The learned-position encoder is not (the check can fail)."""
    ids = random_ids(2, 24)
    mask = torch.ones(2, 24, dtype=torch.long)
    mask[1, 18:] = 0
    permutation = torch.randperm(24)
    model = tiny_model("nope")
    with torch.no_grad():
        outputs = model(ids, attention_mask=mask).last_hidden_state
        permuted = model(ids[:, permutation], attention_mask=mask[:, permutation]).last_hidden_state
    torch.testing.assert_close(permuted, outputs[:, permutation], **FLOAT64)

    learned = tiny_model("learned")  # absolute positions refuse padding before real tokens: no mask here
    with torch.no_grad():
        outputs = learned(ids).last_hidden_state
        permuted = learned(ids[:, permutation]).last_hidden_state
    assert (permuted - outputs[:, permutation]).abs().max() > 1e-2

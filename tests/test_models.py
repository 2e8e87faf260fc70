"""The shared encoder and its thirteen positional encodings: routes, equivalences, invariances, bad input."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

import hf_posenc
from hf_posenc.positional import signed_distance

ALL = list(hf_posenc.VARIANTS)
EXTRAPOLATING = [name for name in ALL if hf_posenc.ENCODINGS[name].extrapolates]
BIAS_ROUTE = [name for name in ALL if hf_posenc.ENCODINGS[name].route == "bias"]


def tiny_mlm(variant, **overrides):
    return AutoModelForMaskedLM.from_config(tiny_config(variant, **overrides))


def random_ids(batch=2, length=20, vocab=120):
    return torch.randint(5, vocab, (batch, length))


def test_registry_names_every_variant_once():
    assert ALL == [
        "nope",
        "learned",
        "sinusoidal",
        "shaw",
        "huang",
        "t5",
        "alibi",
        "rope",
        "deberta",
        "tupe",
        "kerple",
        "fire",
        "attenuated",
    ]
    assert set(hf_posenc.ENCODINGS) == set(ALL)
    for name, config_class in hf_posenc.VARIANTS.items():
        encoding = hf_posenc.ENCODINGS[name]
        assert config_class.model_type == f"posenc_{name}"
        assert encoding.route in {"none", "embed", "rotate", "bias", "score"}
        assert encoding.paper and f"Route: {encoding.route}" in " ".join(encoding.__doc__.split())


@pytest.mark.parametrize("variant", ALL)
def test_auto_classes_build_every_variant(variant):
    settings = {
        k: v for k, v in tiny_config(variant).to_dict().items() if k not in ("model_type", "transformers_version")
    }
    config = AutoConfig.for_model(f"posenc_{variant}", **settings)
    assert type(config) is hf_posenc.VARIANTS[variant]
    classes = hf_posenc.model_classes(variant)
    for auto_class in (AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification):
        model = auto_class.from_config(config)
        assert type(model) is classes[auto_class.__name__]


@pytest.mark.parametrize("variant", ALL)
def test_sdpa_and_eager_agree_forward_and_backward(variant):
    model = tiny_mlm(variant)
    ids = random_ids()
    mask = torch.ones_like(ids)
    mask[1, -5:] = 0
    labels = ids.clone()
    labels[:, ::3] = -100

    def run(implementation):
        model.zero_grad()
        model.set_attn_implementation(implementation)
        output = model(ids, attention_mask=mask, labels=labels)
        output.loss.backward()
        return output.logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    sdpa_logits, sdpa_grads = run("sdpa")
    eager_logits, eager_grads = run("eager")
    torch.testing.assert_close(sdpa_logits, eager_logits, atol=1e-5, rtol=1e-5)
    assert len(sdpa_grads) == len(eager_grads) > 0
    for sdpa_grad, eager_grad in zip(sdpa_grads, eager_grads):
        torch.testing.assert_close(sdpa_grad, eager_grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", ALL)
def test_output_attentions_are_real_probabilities_matching_the_fast_path(variant):
    model = tiny_mlm(variant).eval()
    ids = random_ids()
    fast = model(ids).logits
    output = model(ids, output_attentions=True)
    torch.testing.assert_close(output.logits, fast, atol=1e-5, rtol=1e-5)
    assert len(output.attentions) == 2
    for attention in output.attentions:
        assert attention.shape == (2, 4, 20, 20)
        torch.testing.assert_close(attention.sum(-1), torch.ones(2, 4, 20))
        assert (attention >= 0).all()


@pytest.mark.parametrize("variant", ALL)
def test_sparse_mlm_loss_equals_dense_loss(variant):
    model = tiny_mlm(variant).eval()
    ids = random_ids()
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 7], labels[1, 11] = 9, 17, 33
    sparse = model(ids, labels=labels)
    dense_logits = model(ids).logits
    assert dense_logits.shape == (2, 20, 120)
    assert sparse.logits.shape == (3, 120)
    torch.testing.assert_close(sparse.logits, dense_logits[labels != -100], atol=1e-5, rtol=1e-5)
    dense_loss = F.cross_entropy(dense_logits.view(-1, 120), labels.view(-1), ignore_index=-100)
    torch.testing.assert_close(sparse.loss, dense_loss, atol=1e-6, rtol=1e-6)


def test_mlm_loss_without_masked_tokens_is_zero_not_nan():
    model = tiny_mlm("rope")
    ids = random_ids()
    output = model(ids, labels=torch.full_like(ids, -100))
    assert output.loss.item() == 0.0
    output.loss.backward()


@pytest.mark.parametrize("variant", ALL)
def test_padding_never_changes_real_tokens(variant):
    model = tiny_mlm(variant).eval()
    lengths = [20, 13, 6]
    sequences = [random_ids(1, length)[0] for length in lengths]
    batch = torch.zeros(3, 20, dtype=torch.long)
    mask = torch.zeros(3, 20, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    batched = model(batch, attention_mask=mask).logits
    for row, sequence in enumerate(sequences):
        alone = model(sequence[None]).logits[0]
        torch.testing.assert_close(batched[row, : len(sequence)], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ALL)
def test_a_row_without_real_keys_gives_no_nan(variant):
    model = tiny_mlm(variant).eval()
    ids = random_ids()
    mask = torch.ones_like(ids)
    mask[1] = 0
    output = model(ids, attention_mask=mask, output_attentions=True)
    assert torch.isfinite(output.logits).all()
    assert all(torch.isfinite(attention).all() for attention in output.attentions)
    assert torch.isfinite(model(ids, attention_mask=mask).logits).all()


def is_toeplitz(matrix: torch.Tensor) -> bool:
    """True when matrix[..., i, j] depends only on i - j."""
    return torch.allclose(matrix[..., 1:, 1:], matrix[..., :-1, :-1], atol=1e-5)


@pytest.mark.parametrize("variant", [name for name in BIAS_ROUTE if name != "tupe"])
def test_relative_biases_depend_only_on_distance(variant):
    model = tiny_mlm(variant)
    bias = model.posenc.position.bias(24, "cpu")
    assert bias.shape == (4, 24, 24)
    assert is_toeplitz(bias)


@pytest.mark.parametrize("variant", ["shaw", "huang", "deberta", "rope"])
def test_query_key_encodings_depend_only_on_distance(variant):
    """With the same content at every position, the logits of relative encodings depend only on i - j."""
    position = tiny_mlm(variant).posenc.position
    query = torch.randn(1, 4, 1, 8).expand(1, 4, 24, 8)
    key = torch.randn(1, 4, 1, 8).expand(1, 4, 24, 8)
    context = position.layer_context(24, "cpu", torch.float32)
    if variant == "rope":
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


@pytest.mark.parametrize("variant", ["learned", "tupe"])
def test_fixed_tables_refuse_longer_sequences(variant):
    model = tiny_mlm(variant)
    assert not hf_posenc.ENCODINGS[variant].extrapolates
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=48.*cannot extrapolate"):
        model(random_ids(1, 49))


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


def test_pre_layer_norm_and_classifier():
    config = tiny_config("rope", pre_layer_norm=True, num_labels=3)
    model = AutoModelForSequenceClassification.from_config(config)
    assert model.posenc.final_norm is not None
    ids = random_ids()
    output = model(ids, labels=torch.tensor([0, 2]))
    assert output.logits.shape == (2, 3)
    output.loss.backward()
    assert model.classifier.weight.grad is not None


def test_output_hidden_states_include_embeddings_and_every_layer():
    output = tiny_mlm("t5")(random_ids(), output_hidden_states=True)
    assert len(output.hidden_states) == 3


def test_signed_distance_convention():
    # Positive when the key is left of the query, as the attenuated and alibi docstrings say.
    assert signed_distance(3, "cpu").tolist() == [[0, -1, -2], [1, 0, -1], [2, 1, 0]]


def test_save_and_reload_in_process_gives_identical_outputs(tmp_path):
    for variant in ALL:
        overrides = {"attenuation_learnable": True} if variant == "attenuated" else {}
        model = tiny_mlm(variant, **overrides).eval()
        model.save_pretrained(tmp_path / variant)
        reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path / variant).eval()
        ids = random_ids()
        torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, atol=0, rtol=0)
        assert sorted(p.name for p in (tmp_path / variant).iterdir()) == [
            "config.json",
            "configuration_posenc.py",
            "model.safetensors",
            "modeling_posenc.py",
            "positional.py",
        ]


CLEAN_PROCESS_LOAD = r"""
import json, sys
sys.modules["hf_posenc"] = None  # `import hf_posenc` now raises ImportError
import torch
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification
report = {}
for folder in sys.argv[1:]:
    reference = torch.load(folder + "/reference.pt")
    model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
    assert "hf_posenc" not in type(model).__module__, type(model).__module__
    with torch.no_grad():  # same autograd mode as the reference, so SDPA picks the same kernel
        same_logits = torch.equal(model(reference["ids"]).logits, reference["logits"])
        base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        same_hidden = torch.equal(base(reference["ids"]).last_hidden_state, reference["hidden"])
    classifier = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True, num_labels=3)
    report[folder] = [type(model).__name__, same_logits, same_hidden, type(classifier).__name__]
print(json.dumps(report))
"""


def test_every_variant_loads_with_trust_remote_code_where_hf_posenc_is_not_importable(tmp_path):
    folders = []
    for variant in ALL:
        model = tiny_mlm(variant).eval()
        folder = tmp_path / variant
        model.save_pretrained(folder)
        ids = random_ids()
        with torch.no_grad():
            torch.save(
                {"ids": ids, "logits": model(ids).logits, "hidden": model.posenc(ids).last_hidden_state},
                folder / "reference.pt",
            )
        folders.append(str(folder))
    result = subprocess.run(
        [sys.executable, "-c", CLEAN_PROCESS_LOAD, *folders],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for variant, folder in zip(ALL, folders):
        prefix = hf_posenc.VARIANTS[variant].__name__.removesuffix("Config")
        assert report[folder] == [f"{prefix}ForMaskedLM", True, True, f"{prefix}ForSequenceClassification"]


def test_saved_config_maps_all_auto_classes(tmp_path):
    tiny_mlm("kerple").save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_posenc.PosEncKerpleConfig",
        "AutoModel": "modeling_posenc.PosEncKerpleModel",
        "AutoModelForMaskedLM": "modeling_posenc.PosEncKerpleForMaskedLM",
        "AutoModelForSequenceClassification": "modeling_posenc.PosEncKerpleForSequenceClassification",
    }


def test_hub_code_imports_only_torch_transformers_and_itself():
    import ast
    import pathlib

    package = pathlib.Path(hf_posenc.__file__).parent
    for name in ("configuration_posenc.py", "modeling_posenc.py", "positional.py"):
        tree = ast.parse((package / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {"." if node.level else node.module.split(".")[0]}
            else:
                continue
            assert roots <= {"torch", "transformers", "math", "."}, (name, roots)


def test_position_ids_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="position_ids are not supported"):
        tiny_mlm("learned")(random_ids(), position_ids=torch.arange(20)[None])


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


def test_mlm_loss_uses_trainers_token_count_when_given():
    model = tiny_mlm("alibi").eval()
    ids = random_ids()
    labels = torch.full_like(ids, -100)
    labels[0, :4] = ids[0, :4]
    mean_loss = model(ids, labels=labels).loss
    torch.testing.assert_close(model(ids, labels=labels, num_items_in_batch=torch.tensor(8)).loss, mean_loss / 2)
    assert hf_posenc.model_classes("alibi")["AutoModelForSequenceClassification"].accepts_loss_kwargs is False


@pytest.mark.parametrize("variant", ALL)
def test_fill_mask_pipeline_works_with_every_variant(variant, tiny_tokenizer):
    from transformers import pipeline

    model = AutoModelForMaskedLM.from_config(tiny_config(variant, vocab_size=len(tiny_tokenizer))).eval()
    fill = pipeline("fill-mask", model=model, tokenizer=tiny_tokenizer, top_k=3)
    predictions = fill("the cat sat on the [MASK] while the dog slept")
    assert len(predictions) == 3
    assert all(0 <= prediction["score"] <= 1 and prediction["token_str"] for prediction in predictions)
    assert predictions[0]["score"] >= predictions[-1]["score"]


@pytest.mark.parametrize(
    "variant", ["nope", "learned", "sinusoidal", "t5", "alibi", "tupe", "kerple", "fire", "attenuated"]
)
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


@pytest.mark.parametrize("variant", ["rope", "shaw", "huang", "deberta"])
def test_position_attention_refuses_query_dependent_encodings(variant):
    from hf_posenc import metrics

    with pytest.raises(ValueError, match="no attention from position alone"):
        metrics.position_attention(tiny_mlm(variant), 16)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = tiny_mlm("t5").train()
    ids = random_ids()
    model(ids, labels=ids).loss.backward()
    expected = model.posenc.layers[0].intermediate.weight.grad.clone()
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing
    model(ids, labels=ids).loss.backward()
    torch.testing.assert_close(model.posenc.layers[0].intermediate.weight.grad, expected)

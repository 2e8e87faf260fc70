"""The shared encoder and its heads: attention paths agree, padding is invisible, losses are right."""

import pytest
import torch
import torch.nn.functional as F
from conftest import ALL, random_ids, tiny_config, tiny_mlm
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoModelForTokenClassification

import hf_posenc


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
        # Every parameter takes part in every step: pretraining's ddp_find_unused_parameters=False rests on this.
        unused = [name for name, parameter in model.named_parameters() if parameter.grad is None]
        assert not unused, f"{implementation}: no gradient reaches {unused}"
        return output.logits.detach(), [p.grad.clone() for p in model.parameters()]

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


# FIRE normalises distances by max(threshold, length): thresholds on both sides of the test lengths.
PADDING_CASES = [(variant, {}) for variant in ALL] + [
    ("fire", {"fire_init_threshold": 4.0}),
    ("fire", {"fire_init_threshold": 16.0}),
]


@pytest.mark.parametrize("variant, overrides", PADDING_CASES)
def test_padding_never_changes_real_tokens(variant, overrides):
    model = tiny_mlm(variant, **overrides).eval()
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


def test_token_classification_head_labels_every_token_and_ignores_minus_100():
    config = tiny_config("rope", num_labels=5)
    model = AutoModelForTokenClassification.from_config(config).eval()
    assert type(model).__name__ == "PosEncRopeForTokenClassification"
    ids = random_ids(2, 10)
    labels = torch.randint(0, 5, (2, 10))
    labels[:, 0] = -100  # [CLS]
    labels[1, 6:] = -100  # later sub-words and padding
    output = model(ids, labels=labels)
    assert output.logits.shape == (2, 10, 5)
    kept = labels != -100
    expected = F.cross_entropy(output.logits[kept], labels[kept])
    torch.testing.assert_close(output.loss, expected)

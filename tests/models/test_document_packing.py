"""Document-aware packing in the encoder: with `document_ids`, a block that packs several documents computes, for
each document's tokens, what the document computes alone (attention masked at the boundaries, positions restarting
at each document), for every variant that accepts it; the others refuse it with a clear error."""

import pytest
import torch
from conftest import ALL, random_ids, tiny_mlm
from transformers import TrainerCallback

from hf_posenc.training import parse_pretrain_arguments, pretrain

# Every variant with its defaults, plus the settings that take another code path.
ACCEPTING = [(variant, {}) for variant in ALL if variant != "fire"] + [
    ("alibi", {"alibi_symmetric": False, "alibi_learnable_slopes": True}),
    ("attenuated", {"attenuation_form": "learned_table"}),
    ("attenuated", {"attenuation_strength": [0.5, 0.1, 0.05, 0.01], "attenuation_symmetry": 0.5}),
    ("tupe", {"tupe_untie_cls": False}),
    ("rope", {"rope_partial_rotary_factor": 0.5}),
    ("rope", {"rope_context_scaling": {"rope_type": "linear", "factor": 2.0}}),
    ("sinusoidal", {"sinusoidal_learnable_scale": True}),
    ("forgetting", {"forgetting_tied_gates": False}),
    ("deberta", {"deberta_position_to_content": "paper"}),
    ("learned", {"pre_layer_norm": True}),
]
# Normalised by the whole sequence's length (fire, attenuated "probability") or scaled by it (dynamic RoPE).
REFUSING = [
    ("fire", {}),
    ("attenuated", {"attenuation_form": "probability"}),
    ("rope", {"rope_context_scaling": {"rope_type": "dynamic", "factor": 2.0}}),
]


def packed(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """One block of documents of these lengths: [1, T] ids, [1, T] document ids (the ones a packer writes: the
    document's index in the corpus), and each document's ids."""
    documents = [random_ids(1, length)[0] for length in lengths]
    ids = torch.cat(documents)[None]
    document_ids = torch.cat([torch.full((length,), 7 + index) for index, length in enumerate(lengths)])[None]
    return ids, document_ids, documents


@pytest.mark.parametrize("variant, overrides", ACCEPTING)
def test_each_document_of_a_packed_block_computes_what_it_computes_alone(variant, overrides):
    model = tiny_mlm(variant, **overrides).eval()
    ids, document_ids, documents = packed([9, 14, 1, 6])
    with torch.no_grad():
        together = model(ids, document_ids=document_ids).logits[0]
        start = 0
        for document in documents:
            alone = model(document[None]).logits[0]
            torch.testing.assert_close(together[start : start + len(document)], alone, atol=1e-5, rtol=1e-5)
            start += len(document)


@pytest.mark.parametrize("variant, overrides", [("t5", {}), ("learned", {}), ("rope", {}), ("shaw", {})])
def test_packed_blocks_with_padding_and_a_batch_of_other_layouts(variant, overrides):
    model = tiny_mlm(variant, **overrides).eval()
    first, first_documents, first_alone = packed([5, 8, 3])
    second, second_documents, second_alone = packed([12, 4])
    ids = torch.zeros(2, 20, dtype=torch.long)
    document_ids = torch.full((2, 20), -1)
    mask = torch.zeros(2, 20, dtype=torch.long)
    for row, (row_ids, row_documents) in enumerate(((first, first_documents), (second, second_documents))):
        ids[row, : row_ids.shape[1]] = row_ids[0]
        document_ids[row, : row_ids.shape[1]] = row_documents[0]
        mask[row, : row_ids.shape[1]] = 1
    with torch.no_grad():
        logits = model(ids, attention_mask=mask, document_ids=document_ids).logits
        for row, documents in enumerate((first_alone, second_alone)):
            start = 0
            for document in documents:
                alone = model(document[None]).logits[0]
                torch.testing.assert_close(logits[row, start : start + len(document)], alone, atol=1e-5, rtol=1e-5)
                start += len(document)


def test_without_document_ids_a_block_is_one_sequence_as_before():
    model = tiny_mlm("learned").eval()
    ids, document_ids, _ = packed([9, 11])
    with torch.no_grad():
        plain = model(ids).logits
        one_document = model(ids, document_ids=torch.zeros_like(document_ids)).logits
        two_documents = model(ids, document_ids=document_ids).logits
    torch.testing.assert_close(one_document, plain, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(two_documents[0, 9:], plain[0, 9:], atol=1e-3)  # the second document's positions moved


def test_positions_restart_at_each_document_and_the_mask_is_block_diagonal():
    model = tiny_mlm("nope").posenc
    document_ids = torch.tensor([[3, 3, 3, 8, 8, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0, 0, 1, 1]])
    same_document, position_ids = model.document_layout(document_ids, 2, 9)
    assert position_ids.tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6, 0, 1]]
    expected = torch.block_diag(torch.ones(3, 3), torch.ones(2, 2), torch.ones(4, 4)).bool()
    assert torch.equal(same_document[0], expected)
    assert torch.equal(same_document[1], torch.block_diag(torch.ones(7, 7), torch.ones(2, 2)).bool())
    # The float mask every layer adds: 0 inside a document, the dtype's minimum across documents.
    bias = model.attention_bias(None, 9, "cpu", torch.float32, (same_document, position_ids))
    assert bias.shape == (2, 1, 9, 9)
    assert torch.equal(bias[:, 0] == 0, same_document)
    assert torch.all(bias[:, 0][~same_document] == torch.finfo(torch.float32).min)


def test_a_document_id_seen_again_later_is_a_new_document():
    # Positions and the mask follow runs of equal ids: a block never holds the same document twice, but if ids repeat
    # (3, 4, 3) the two runs of 3 are separate documents rather than one split in two.
    same_document, position_ids = tiny_mlm("nope").posenc.document_layout(torch.tensor([[3, 3, 4, 3]]), 1, 4)
    assert position_ids.tolist() == [[0, 1, 0, 0]]
    assert not same_document[0, 0, 3]


@pytest.mark.parametrize("variant, overrides", REFUSING)
def test_variants_that_cannot_restart_positions_refuse_document_ids(variant, overrides):
    model = tiny_mlm(variant, **overrides).eval()
    ids, document_ids, _ = packed([6, 6])
    assert model.posenc.position.document_restart_problem() is not None
    with pytest.raises(ValueError, match=f"cannot be used with the '{variant}' encoding: .*length"):
        model(ids, document_ids=document_ids)


@pytest.mark.parametrize("variant, overrides", ACCEPTING)
def test_every_other_variant_accepts_document_ids(variant, overrides):
    assert tiny_mlm(variant, **overrides).posenc.position.document_restart_problem() is None


@pytest.mark.parametrize(
    "document_ids, problem",
    [(torch.zeros(1, 5, dtype=torch.long), r"\[1, 6\]"), (torch.zeros(1, 6), "integer tensor")],
)
def test_malformed_document_ids_are_refused(document_ids, problem):
    model = tiny_mlm("t5").eval()
    with pytest.raises(ValueError, match=problem):
        model(random_ids(1, 6), document_ids=document_ids)


def test_the_mlm_loss_trains_through_document_ids():
    model = tiny_mlm("rope")
    ids, document_ids, _ = packed([10, 10])
    labels = torch.full_like(ids, -100)
    labels[0, [2, 11, 17]] = ids[0, [2, 11, 17]]
    output = model(ids, labels=labels, document_ids=document_ids)
    output.loss.backward()
    assert torch.isfinite(output.loss)
    assert model.posenc.embeddings.word_embeddings.weight.grad.abs().sum() > 0


TINY_RUN = (
    "--corpus stdlib --vocab_size 1000 --max_seq_length 32 --config_overrides "
    "hidden_size=32,num_hidden_layers=2,num_attention_heads=4,intermediate_size=64 --per_device_train_batch_size 8 "
    "--per_device_eval_batch_size 8 --max_steps 12 --logging_steps 6 --eval_steps 12 --save_steps 12 --warmup_steps 0 "
    "--posenc_probe_sequences 4 --disable_tqdm true --dataloader_pin_memory false"
).split()


class RecordDocumentIds(TrainerCallback):
    """Records, at every training forward of the encoder, whether document_ids reached it (the locality/symmetry
    probe runs in evaluation mode on whole blocks, without them)."""

    def __init__(self):
        self.seen = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def record(module, positional, keywords):
            if module.training:
                self.seen.append(keywords.get("document_ids") is not None)

        model.posenc.register_forward_pre_hook(record, with_kwargs=True)


def test_a_tiny_pretraining_run_with_document_aware_packing(tmp_path):
    recorder = RecordDocumentIds()
    argv = ["--variant", "tupe", "--output_dir", str(tmp_path / "run"), "--document_aware_packing", "true", *TINY_RUN]
    result = pretrain(**parse_pretrain_arguments(argv), callbacks=[recorder])
    assert result.train_steps == 12 and result.perplexity > 1
    assert recorder.seen and all(recorder.seen)  # Trainer kept the column and every step used it
    assert (tmp_path / "run" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--variant", "fire"], "cannot be used with 'fire': its bias is normalised by the length"),
        (["--variant", "alibi", "--streaming", "true"], "cannot be used with --streaming"),
    ],
)
def test_pretraining_refuses_document_aware_packing_where_it_cannot_be_done(tmp_path, flags, message):
    argv = [*flags, "--corpus", "stdlib", "--max_steps", "2", "--output_dir", str(tmp_path / "run")]
    with pytest.raises(ValueError, match=message):
        pretrain(**parse_pretrain_arguments([*argv, "--document_aware_packing", "true"]))
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())

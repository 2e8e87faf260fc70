"""The model card: what it says, its metadata, and the `results` it accepts (hf_posenc.hub.card, card_results)."""

import math
import re
from pathlib import Path

import pytest
import torch
from hub_helpers import RESULTS, TEXTS, tiny_model
from huggingface_hub import ModelCard

import hf_posenc
from hf_posenc.hub import REPO_ID_PLACEHOLDER, CardResults, attention_results, normalize_results, render_card
from hf_posenc.results import PretrainResult, ProbeResult

# The fixtures `exported`, `export_copy` and `hub_env`.
pytest_plugins = ["hub_fixtures"]


def test_card_round_trips_with_every_number_in_eval_results(exported):
    card = ModelCard.load(exported["folder"] / "README.md")
    data = card.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "fill-mask"
    assert data.tags[:4] == ["custom_code", "positional-encoding", "posenc_rope", "fill-mask"]
    assert data.datasets == ["stanfordnlp/snli"]  # the built-in corpus is a description, not a Hub dataset
    assert data.model_name == "posenc-rope"

    values = {(r.task_type, r.dataset_config, r.metric_type): r.metric_value for r in data.eval_results}
    assert values[("fill-mask", None, "loss")] == RESULTS["eval_loss"]
    assert values[("fill-mask", None, "perplexity")] == pytest.approx(math.exp(RESULTS["eval_loss"]), rel=1e-12)
    for metric in ("locality", "symmetry", "symmetry_scale_aware"):
        assert values[("fill-mask", None, metric)] == RESULTS[metric]
    for probe in ("original", "shuffle-3", "shuffle-4", "random", "role-swap"):
        assert values[("text-classification", probe, "accuracy")] == RESULTS["probes"][probe]
    still_entailment = values[("text-classification", "role-swap", "still_entailment_rate")]
    assert still_entailment == RESULTS["probes"]["still_entailment"]
    assert len(values) == 5 + 5 + 1
    assert {r.dataset_type for r in data.eval_results if r.task_type == "text-classification"} == {"stanfordnlp/snli"}


def test_card_text_states_variant_results_usage_and_citation(exported, tiny_tokenizer):
    text = (exported["folder"] / "README.md").read_text()
    rope = hf_posenc.ENCODINGS["rope"]
    assert f"| Paper | {rope.paper} |" in text
    assert "| Route | rotate:" in text
    assert "| Symmetric by construction | no |" in text
    assert "| `rope_theta` | 10000.0 |" in text and "| `hidden_size` | 32 |" in text
    assert "| Training steps | 1,200 |" in text
    tokenizer_name = type(tiny_tokenizer).__name__
    assert f"| Tokenizer | {tokenizer_name}, vocabulary of {len(tiny_tokenizer)} tokens |" in text  # filled by export
    assert "| Eval loss | 3.2188 |" in text
    assert f"| Perplexity | {math.exp(3.2188):.2f} |" in text
    assert "| 0 | 0.5031 | 0.8122 | 0.7013 |" in text and "| 1 | 0.3219 | 0.8502 | 0.5421 |" in text
    assert "![locality symmetry curves](plots/locality_symmetry_curves.png)" in text
    assert "| shuffle-3 | 80.3% | -0.9 |" in text and "| role-swap | 31.2% | -50.0 |" in text
    assert 'still answers "entailment" for 68.8% of the pairs' in text
    assert "trust_remote_code=True" in text and f'model_id = "{REPO_ID_PLACEHOLDER}"' in text
    assert "title     = {The Locality and Symmetry of Positional Encodings}" in text
    assert "Findings of the Association for Computational Linguistics: EMNLP 2023" in text
    assert "{{" not in text and "{%" not in text


def test_card_without_results_omits_their_sections(tiny_tokenizer):
    config = tiny_model("alibi", tiny_tokenizer).config
    card = render_card(config, repo_id="someone/posenc-alibi-small")
    text = str(card)
    for section in ("## Training", "## Evaluation", "## Locality and symmetry", "## Word-order probes"):
        assert section not in text
    assert "## Usage" in text and "## Citation" in text and 'model_id = "someone/posenc-alibi-small"' in text
    assert card.data.eval_results is None and card.data.datasets is None
    assert card.data.model_name == "posenc-alibi-small"
    assert "| Symmetric by construction | yes |" in text  # ALiBi with shared fixed slopes


def test_card_of_a_probe_model_at_chance_shows_chance_and_no_deltas(tiny_tokenizer):
    config = tiny_model("rope", tiny_tokenizer).config
    probes = {"original": 0.34, "shuffle-3": 0.33, "role-swap": 0.66, "still_entailment": 0.34}
    at_chance = str(render_card(config, {"probes": probes, "probe_chance": 0.35, "probe_verdict": "not above chance"}))
    assert "Chance level: 35.0%" in at_chance and "not above chance" in at_chance
    assert "The model stayed at chance on SNLI" in at_chance
    assert "| role-swap | 66.0% | n/a (model at chance) |" in at_chance and "+32.0" not in at_chance
    above = str(render_card(config, {"probes": probes, "probe_chance": 0.2, "probe_verdict": "above chance"}))
    assert "| role-swap | 66.0% | +32.0 |" in above and "Chance level: 20.0%" in above
    assert "stayed at chance" not in above
    unknown = str(render_card(config, {"probes": probes}))  # results from before the chance level
    assert "| role-swap | 66.0% | +32.0 |" in unknown and "Chance level" not in unknown


def test_card_reads_symmetry_by_construction_from_the_config(tiny_tokenizer):
    def symmetric_row(variant, **overrides):
        text = str(render_card(tiny_model(variant, tiny_tokenizer, **overrides).config))
        return re.search(r"\| Symmetric by construction \| (\w+) \|", text).group(1)

    assert symmetric_row("attenuated") == "yes"
    assert symmetric_row("attenuated", attenuation_symmetry=0.5) == "no"
    assert symmetric_row("alibi", alibi_symmetric=False) == "no"
    assert symmetric_row("kerple") == "yes"
    assert symmetric_row("learned") == "no"


def test_undefined_metric_is_shown_but_left_out_of_model_index(tiny_tokenizer):
    config = tiny_model("rope", tiny_tokenizer).config
    card = render_card(config, {"locality": 0.5, "symmetry": float("nan"), "dataset": "wikitext"})
    assert "| Symmetry (reference) | undefined (NaN) |" in str(card)
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("locality", 0.5)]
    assert card.data.datasets == ["wikitext"]


def test_card_takes_the_attention_metrics_of_a_real_model(tiny_tokenizer):
    from hf_posenc.metrics import summarize

    model = tiny_model("alibi", tiny_tokenizer)
    batch = tiny_tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        summary = summarize(model(**batch, output_attentions=True).attentions, batch["attention_mask"])
    results = attention_results(summary)
    assert [row["layer"] for row in results["per_layer"]] == [0, 1]
    card = render_card(model.config, results)
    text = str(card)
    for layer in (0, 1):
        cells = [f"{summary['per_layer'][key][layer]:.4f}" for key in ("locality", "symmetry", "symmetry_scale_aware")]
        assert f"| {layer} | {' | '.join(cells)} |" in text
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values == {key: summary[key] for key in ("locality", "symmetry", "symmetry_scale_aware")}


def test_card_accepts_what_the_pretraining_script_reports(tiny_tokenizer, tmp_path):
    config = tiny_model("rope", tiny_tokenizer).config
    train_file = tmp_path / "train.txt"
    train_file.write_text("some text\n")
    results = {"variant": "rope", "train_loss": 3.5, "eval_loss": 3.25, "dataset": str(train_file)}
    card = render_card(config, results)
    assert "| Mean training loss | 3.5000 |" in str(card)
    assert card.data.datasets is None  # a local file is not a Hub dataset
    assert render_card(config, {"dataset": "data/train.jsonl"}).data.datasets is None
    with pytest.raises(ValueError, match="another model"):
        render_card(config, {"variant": "alibi"})


def test_results_accept_tensors_and_reject_mistakes():
    normalized = normalize_results({"eval_loss": torch.tensor(2.0), "train_steps": 10.0, "plots": [Path("a.png")]})
    assert normalized == {"eval_loss": 2.0, "perplexity": math.exp(2.0), "train_steps": 10, "plots": ["a.png"]}
    assert normalize_results({"eval_loss": 1000.0})["perplexity"] == math.inf  # a diverged run, not an overflow
    bad_inputs = {
        "eval-loss": {"eval-loss": 2.0},
        "must be a number": {"locality": "0.4"},
        "fractions": {"probes": {"original": 81.0}},
        "Unknown probe": {"probes": {"shuffled": 0.5}},
        "'layer' key": {"per_layer": [{"locality": 0.3}]},
        "whole number": {"train_steps": 10.5},
        "several files named": {"plots": ["a/x.png", "b/x.png"]},
        "non-empty string": {"dataset": "  "},
    }
    for expected, results in bad_inputs.items():
        with pytest.raises(ValueError, match=expected):
            normalize_results(results)


def test_the_typed_results_of_pretraining_and_probing_fit_the_card_schema():
    """Every key a PretrainResult or ProbeResult hands the card is a CardResults field of a compatible kind."""
    card_fields = set(CardResults.field_names())
    pretrain = PretrainResult(
        variant="rope",
        max_seq_length=48,
        train_steps=10,
        train_loss=3.0,
        eval_loss=2.5,
        perplexity=math.exp(2.5),
        dataset="wikitext",
        tokenizer="WordPiece, 120 tokens",
        locality=0.4,
        per_layer=[{"layer": 0, "locality": 0.4}],
    )
    probe = ProbeResult(
        probes={"original": 0.6, "role-swap": 0.3, "still_entailment": None},
        deltas={"role-swap": -30.0},
        model="m",
        model_type="posenc_rope",
        train_pairs=10,
        test_pairs=10,
        seed=0,
    )
    for result in (pretrain, probe):
        values = result.card_results()
        assert set(values) <= card_fields
        assert normalize_results(values)  # accepted as they are
    assert normalize_results(probe.card_results())["probes"] == {"original": 0.6, "role-swap": 0.3}
    probe.chance, probe.verdict = 0.34, "not above chance"
    assert set(probe.card_results()) <= card_fields
    assert normalize_results(probe.card_results())["probe_verdict"] == "not above chance"


def test_probe_scores_at_chance_stay_in_the_prose_but_not_in_the_model_index(tiny_tokenizer):
    config = tiny_model("rope", tiny_tokenizer).config
    probes = {"original": 0.34, "shuffle-3": 0.33, "role-swap": 0.66, "still_entailment": 0.34}
    results = {"eval_loss": 3.0, "probes": probes, "probe_chance": 0.35, "probe_verdict": "not above chance"}
    card = render_card(config, results)
    assert [entry.task_type for entry in card.data.eval_results] == ["fill-mask", "fill-mask"]  # loss, perplexity
    text = str(card)
    assert "| original | 34.0% |  |" in text and "Chance level: 35.0%" in text
    assert "not listed in this card's model-index metadata" in text
    above = render_card(config, {**results, "probe_chance": 0.2, "probe_verdict": "above chance"})
    assert sum(entry.task_type == "text-classification" for entry in above.data.eval_results) == 4
    assert "not listed in this card's model-index" not in str(above)


def test_the_card_states_the_probe_samples_and_seed_and_a_licence(tiny_tokenizer):
    config = tiny_model("rope", tiny_tokenizer).config
    probe = ProbeResult(
        probes={"original": 0.6, "role-swap": 0.3},
        deltas={"role-swap": -30.0},
        model="m",
        model_type="posenc_rope",
        train_pairs=3200,
        test_pairs=300,
        seed=42,
        chance=0.34,
        verdict="above chance",
        details={"learning_rate": 3e-4, "data": {"train": "SNLI 1.0 train (PyPI X)", "test": "my_test.jsonl"}},
    )
    card = render_card(config, {**probe.card_results(), "license": "apache-2.0"})
    assert (
        "Setup: fine-tuned on 3,200 training pairs; scored on 300 test pairs (each probe built from them); "
        "learning rate 0.0003; seed 42; test data: my_test.jsonl; train data: SNLI 1.0 train (PyPI X)."
    ) in str(card)
    assert card.data.license == "apache-2.0"
    assert render_card(config, {"license": "apache-2.0"}, license="mit").data.license == "mit"  # the argument wins
    assert "Setup:" not in str(render_card(config, {"probes": {"original": 0.6}}))
    with pytest.raises(ValueError, match="whole number"):
        normalize_results({"probe_test_pairs": -1})

"""Hub publishing: the model card, the Hub-ready folder, and the upload against a local fake Hub.

No traffic leaves 127.0.0.1: uploads go to tests/fake_hub.py's server, the token file and caches point into
tmp_path, and the loading subprocess runs with HF_HUB_OFFLINE=1.
"""

import argparse
import hashlib
import json
import math
import os
import re
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, constants
from transformers import AutoModelForMaskedLM, BertTokenizerFast

import hf_posenc
from hf_posenc.hub import (
    REPO_ID_PLACEHOLDER,
    HubPublishError,
    add_push_arguments,
    attention_results,
    export,
    normalize_results,
    push,
    render_card,
    run_push,
)

sys.path.insert(0, str(Path(__file__).parent))
from fake_hub import FakeHub  # noqa: E402

TOKEN = "hf_test_write_token"
WORDS = (
    "a the man dog bites cat sat on mat girl opened door and walked in is little bird sings tree house red "
    "blue runs park child plays ball with her friend"
).split()
TEXTS = ["a man bites a dog .", "the little girl opened the door and walked in .", "a cat sat on the mat ."]

RESULTS = {
    "dataset": "built-in corpus (Wikipedia sample, fairy tales)",
    "train_steps": 1200,
    "max_seq_length": 48,
    "eval_loss": 3.2188,
    "locality": 0.4125,
    "symmetry": 0.8312,
    "symmetry_scale_aware": 0.6217,
    "per_layer": [
        {"layer": 0, "locality": 0.5031, "symmetry": 0.8122, "symmetry_scale_aware": 0.7013},
        {"layer": 1, "locality": 0.3219, "symmetry": 0.8502, "symmetry_scale_aware": 0.5421},
    ],
    "measured_on": "16 validation sequences of 48 tokens",
    "probes": {
        "original": 0.8125,
        "shuffle-3": 0.8031,
        "shuffle-4": 0.7968,
        "random": 0.7625,
        "role-swap": 0.3125,
        "still_entailment": 0.6875,
    },
}


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def tokenizer():
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS]
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(tokens)})
    assert len(tokenizer) == len(tokens) and "[UNK]" not in tokenizer.tokenize(" ".join(TEXTS))
    return tokenizer


def tiny_model(variant, tokenizer, **overrides):
    torch.manual_seed(0)
    config = hf_posenc.create_config(
        variant,
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        **overrides,
    )
    return AutoModelForMaskedLM.from_config(config).eval()


def write_png(path: Path) -> Path:
    """A real 2x2 grey PNG, written with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"\x00\x80\x80" * 2)
    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


def folder_snapshot(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def mlm_logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


@pytest.fixture(scope="module")
def exported(tokenizer, tmp_path_factory):
    """A rope model exported with the full results and one plot."""
    root = tmp_path_factory.mktemp("exported")
    plot = write_png(root / "locality_symmetry_curves.png")
    model = tiny_model("rope", tokenizer)
    folder = export(model, tokenizer, root / "posenc-rope-tiny", {**RESULTS, "plots": [str(plot)]})
    return {"folder": folder, "model": model, "plot": plot}


@pytest.fixture
def export_copy(exported, tmp_path):
    """A private copy of the exported folder, for tests that upload it (push may fill the card's repo id)."""
    import shutil

    return Path(shutil.copytree(exported["folder"], tmp_path / "to-push"))


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    """A running fake Hub that huggingface_hub talks to, a token in HF_TOKEN, and no real token or cache in sight."""
    with FakeHub(token=TOKEN) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # read at import time: patch the live value too
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"))
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield hub
        assert hub.unexpected == [], "the client called endpoints the fake Hub does not know"
        assert hub.invalid_requests == [], "the client sent requests the real Hub would reject"


# ------------------------------------------------------------------------------------------------ model card
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


def test_card_text_states_variant_results_usage_and_citation(exported):
    text = (exported["folder"] / "README.md").read_text()
    rope = hf_posenc.ENCODINGS["rope"]
    assert f"| Paper | {rope.paper} |" in text
    assert "| Route | rotate:" in text
    assert "| Symmetric by construction | no |" in text
    assert "| `rope_theta` | 10000.0 |" in text and "| `hidden_size` | 32 |" in text
    assert "| Training steps | 1,200 |" in text
    assert f"| Tokenizer | BertTokenizer, vocabulary of {len(WORDS) + 7} tokens |" in text  # filled by export
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


def test_card_without_results_omits_their_sections(tokenizer):
    config = tiny_model("alibi", tokenizer).config
    card = render_card(config, repo_id="someone/posenc-alibi-small")
    text = str(card)
    for section in ("## Training", "## Evaluation", "## Locality and symmetry", "## Word-order probes"):
        assert section not in text
    assert "## Usage" in text and "## Citation" in text and 'model_id = "someone/posenc-alibi-small"' in text
    assert card.data.eval_results is None and card.data.datasets is None
    assert card.data.model_name == "posenc-alibi-small"
    assert "| Symmetric by construction | yes |" in text  # ALiBi with shared fixed slopes


def test_card_reads_symmetry_by_construction_from_the_config(tokenizer):
    def symmetric_row(variant, **overrides):
        text = str(render_card(tiny_model(variant, tokenizer, **overrides).config))
        return re.search(r"\| Symmetric by construction \| (\w+) \|", text).group(1)

    assert symmetric_row("attenuated") == "yes"
    assert symmetric_row("attenuated", attenuation_symmetry=0.5) == "no"
    assert symmetric_row("alibi", alibi_symmetric=False) == "no"
    assert symmetric_row("kerple") == "yes"
    assert symmetric_row("learned") == "no"


def test_undefined_metric_is_shown_but_left_out_of_model_index(tokenizer):
    config = tiny_model("rope", tokenizer).config
    card = render_card(config, {"locality": 0.5, "symmetry": float("nan"), "dataset": "wikitext"})
    assert "| Symmetry (reference) | undefined (NaN) |" in str(card)
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("locality", 0.5)]
    assert card.data.datasets == ["wikitext"]


def test_card_takes_the_attention_metrics_of_a_real_model(tokenizer):
    from hf_posenc.metrics import summarize

    model = tiny_model("alibi", tokenizer)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
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


def test_card_accepts_what_the_pretraining_script_reports(tokenizer, tmp_path):
    config = tiny_model("rope", tokenizer).config
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
    bad_inputs = {
        "eval-loss": {"eval-loss": 2.0},
        "must be a number": {"locality": "0.4"},
        "fractions": {"probes": {"original": 81.0}},
        "Unknown probe": {"probes": {"shuffled": 0.5}},
        "'layer' key": {"per_layer": [{"locality": 0.3}]},
        "whole number": {"train_steps": 10.5},
        "several files named": {"plots": ["a/x.png", "b/x.png"]},
    }
    for expected, results in bad_inputs.items():
        with pytest.raises(ValueError, match=expected):
            normalize_results(results)


# ------------------------------------------------------------------------------------------------ export
def test_export_writes_a_hub_ready_folder(exported):
    folder = exported["folder"]
    files = set(folder_snapshot(folder))
    assert {"config.json", "model.safetensors", "README.md", "tokenizer_config.json", "tokenizer.json"} <= files
    assert "plots/locality_symmetry_curves.png" in files
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "posenc_rope"
    code_files = {reference.split(".")[0] + ".py" for reference in config["auto_map"].values()}
    assert code_files <= files and "positional.py" in files
    for code_file in ("configuration_posenc.py", "modeling_posenc.py", "positional.py"):
        source = (folder / code_file).read_text()
        assert not re.search(r"^\s*(from|import) hf_posenc", source, flags=re.M)
    assert (folder / "plots/locality_symmetry_curves.png").read_bytes() == exported["plot"].read_bytes()
    assert not list(folder.parent.glob(".*export-*")), "the staging folder was left behind"


def test_exported_folders_load_without_hf_posenc_and_give_the_same_outputs(tokenizer, tmp_path):
    """One clean process for four variants (one per route): hf_posenc is unimportable there."""
    folders, expected = {}, {}
    for variant in ("learned", "rope", "alibi", "deberta"):
        model = tiny_model(variant, tokenizer)
        folders[variant] = str(export(model, tokenizer, tmp_path / variant))
        expected[variant] = mlm_logits(model, tokenizer)
    script = textwrap.dedent(
        """
        import json, re, sys
        sys.modules["hf_posenc"] = None  # any `import hf_posenc` now raises ImportError
        try:
            import hf_posenc
            raise SystemExit("hf_posenc is importable")
        except ImportError:
            pass
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer
        folders, texts, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
        logits = {}
        for variant, folder in folders.items():
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
            assert not type(model).__module__.startswith("hf_posenc"), type(model).__module__
            with torch.no_grad():
                logits[variant] = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
        # The card's own usage snippet, pointed at the local folder, runs as written.
        readme = open(folders["rope"] + "/README.md").read()
        snippet = re.search(r"```python\\n(.*?)```", readme, re.S).group(1)
        snippet = re.sub(r'model_id = "[^"]*"', f"model_id = {folders['rope']!r}", snippet)
        namespace = {}
        exec(snippet, namespace)
        assert len(namespace["attentions"]) == 2 and namespace["attentions"][0].shape[1] == 4
        torch.save(logits, out)
        """
    )
    out = tmp_path / "logits.pt"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONPATH": "",
    }
    completed = subprocess.run(
        [sys.executable, "-c", script, json.dumps(folders), json.dumps(TEXTS), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    loaded = torch.load(out)
    for variant, logits in expected.items():
        torch.testing.assert_close(loaded[variant], logits, rtol=0, atol=1e-5)


def test_export_refuses_a_folder_that_holds_something_else(tokenizer, tmp_path):
    model = tiny_model("rope", tokenizer)
    target = tmp_path / "my-project"
    target.mkdir()
    (target / "notes.txt").write_text("my notes")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export(model, tokenizer, target)
    assert folder_snapshot(target) == {"notes.txt": hashlib.sha256(b"my notes").hexdigest()}

    with pytest.warns(UserWarning, match="notes.txt"):
        export(model, tokenizer, target, overwrite=True)
    assert (target / "notes.txt").read_text() == "my notes"  # never deleted
    assert (target / "model.safetensors").is_file()


def test_export_refreshes_an_earlier_export_in_place(tokenizer, tmp_path):
    model = tiny_model("rope", tokenizer)
    folder = export(model, tokenizer, tmp_path / "out", {"eval_loss": 3.0})
    export(model, tokenizer, folder, {"eval_loss": 2.5})  # no overwrite needed: it is our own export
    assert ModelCard.load(folder / "README.md").data.eval_results[0].metric_value == 2.5


def test_export_checks_its_inputs_before_writing_anything(tokenizer, tmp_path):
    model = tiny_model("rope", tokenizer)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        export(model, tokenizer, tmp_path / "out", {"plots": [str(tmp_path / "missing.png")]})
    with pytest.raises(ValueError, match="Unknown key"):
        export(model, tokenizer, tmp_path / "out", {"loss": 2.0})
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ upload
def test_push_uploads_exactly_the_folder(hub_env, export_copy):
    before = folder_snapshot(export_copy)
    url = push(export_copy, "fake-user/posenc-rope-tiny")  # token from HF_TOKEN
    assert url == f"{hub_env.url}/fake-user/posenc-rope-tiny"

    repo = hub_env.repos["fake-user/posenc-rope-tiny"]
    committed = repo.committed_files()
    assert set(committed) == set(folder_snapshot(export_copy)) == set(before)
    for path, content in committed.items():
        assert content == (export_copy / path).read_bytes(), path
    # The card now names the repository in its usage snippet, on the Hub and in the folder alike.
    assert b'model_id = "fake-user/posenc-rope-tiny"' in committed["README.md"]
    assert {path for path, digest in before.items() if folder_snapshot(export_copy)[path] != digest} == {"README.md"}
    assert not repo.private
    ModelCard(committed["README.md"].decode())  # the uploaded card parses

    # Pushing again changes nothing on the Hub: no new commit.
    assert push(export_copy, "fake-user/posenc-rope-tiny") == url
    assert len(repo.commits) == 1


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")  # inside huggingface_hub's LFS PUT
def test_push_through_git_lfs_when_the_hub_asks_for_it(hub_env, export_copy, monkeypatch):
    """Without Xet, files the Hub stores in LFS travel through the LFS batch API, not inside the commit."""
    hub_env.lfs_suffixes = (".safetensors",)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    push(export_copy, "fake-user/lfs-model", private=True)
    repo = hub_env.repos["fake-user/lfs-model"]
    assert repo.private and repo.lfs_paths == {"model.safetensors"}
    assert repo.files["model.safetensors"] == (export_copy / "model.safetensors").read_bytes()
    assert set(repo.committed_files()) == set(folder_snapshot(export_copy))


def test_push_survives_one_dropped_connection_during_the_commit(hub_env, export_copy):
    hub_env.fail("commit", drop=True, times=1)
    push(export_copy, "fake-user/flaky")
    assert [r.status for r in hub_env.requests if r.route == "commit"] == [None, 200]
    assert set(hub_env.repos["fake-user/flaky"].committed_files()) == set(folder_snapshot(export_copy))


@pytest.mark.parametrize(
    "scenario, status, expected",
    [
        ("bad token", 401, "rejected the token"),
        ("no permission to create", 403, "'someone-else' is your user name"),
        ("no permission to write", 403, "not allowed to write"),
        ("repo missing", 404, "was not found"),
        ("connection dropped", None, "Could not reach the Hub"),
        ("server down", None, "Could not reach the Hub"),
    ],
)
def test_push_failures_explain_themselves_and_leave_the_folder_intact(hub_env, export_copy, scenario, status, expected):
    repo_id, token = "fake-user/model", None
    if scenario == "bad token":
        token = "hf_revoked"
    elif scenario == "no permission to create":
        repo_id = "someone-else/model"
    elif scenario == "no permission to write":
        repo_id = "other-org/shared"
        hub_env.add_repo(repo_id)
    elif scenario == "repo missing":
        hub_env.fail("preupload", status=404, message="Repository not found", error_code="RepoNotFound")
    elif scenario == "connection dropped":
        hub_env.fail("create_repo", drop=True)
    elif scenario == "server down":
        hub_env.stop()
    before = folder_snapshot(export_copy)

    with pytest.raises(HubPublishError, match=expected) as caught:
        push(export_copy, repo_id, token=token)

    assert caught.value.status_code == status
    assert "unchanged" in str(caught.value)
    assert folder_snapshot(export_copy) == before  # the card's placeholder was put back too
    assert not any(repo.commits for repo in hub_env.repos.values())


def test_push_reports_metadata_the_hub_rejects(hub_env, export_copy):
    readme = export_copy / "README.md"
    readme.write_text(readme.read_text().replace("value: 3.2188", "value: not-a-number", 1))
    before = folder_snapshot(export_copy)
    with pytest.raises(HubPublishError, match="rejected the metadata") as caught:
        push(export_copy, "fake-user/model")
    assert "'loss' needs a finite numeric 'value'" in str(caught.value)
    assert folder_snapshot(export_copy) == before
    assert not hub_env.repos["fake-user/model"].commits


def test_push_without_any_token_stops_before_the_network(hub_env, export_copy, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubPublishError, match="No Hugging Face token found"):
        push(export_copy, "fake-user/model")
    assert hub_env.requests == []


def test_push_command_prints_the_url_or_the_reason(hub_env, export_copy, capsys):
    parser = add_push_arguments(argparse.ArgumentParser(prog="hf-posenc push"))
    assert run_push(parser.parse_args([str(export_copy), "fake-user/cli-model", "--private"])) == 0
    assert capsys.readouterr().out.strip() == f"{hub_env.url}/fake-user/cli-model"
    assert hub_env.repos["fake-user/cli-model"].private

    assert run_push(parser.parse_args([str(export_copy), "fake-user/cli-model", "--token", "hf_wrong"])) == 1
    assert "rejected the token" in capsys.readouterr().err


def test_pretrain_push_to_hub_publishes_the_trained_model(hub_env, tmp_path):
    """examples/pretrain.py --push_to_hub: a tiny run, exported and uploaded with its card and curves."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "examples" / "pretrain.py"
    spec = importlib.util.spec_from_file_location("pretrain_for_hub_test", script)
    pretrain = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pretrain  # dataclasses look their module up while the script is executed
    try:
        spec.loader.exec_module(pretrain)
        results = pretrain.main(
            [
                "--variant",
                "attenuated",
                "--output_dir",
                str(tmp_path / "run"),
                "--push_to_hub",
                "--hub_model_id",
                "fake-user/posenc-attenuated-tiny",
                "--corpus",
                "stdlib",
                "--vocab_size",
                "500",
                "--max_seq_length",
                "32",
                "--config_overrides",
                "hidden_size=32,num_hidden_layers=2,num_attention_heads=4,intermediate_size=64",
                "--per_device_train_batch_size",
                "8",
                "--per_device_eval_batch_size",
                "8",
                "--max_steps",
                "4",
                "--logging_steps",
                "2",
                "--eval_steps",
                "4",
                "--save_steps",
                "4",
                "--warmup_steps",
                "0",
                "--posenc_probe_sequences",
                "4",
                "--disable_tqdm",
                "true",
                "--dataloader_pin_memory",
                "false",
                "--report_to",
                "none",
            ]
        )
    finally:
        del sys.modules[spec.name]
    committed = hub_env.repos["fake-user/posenc-attenuated-tiny"].committed_files()
    assert {"config.json", "model.safetensors", "modeling_posenc.py", "README.md", "tokenizer.json"} <= set(committed)
    card = ModelCard(committed["README.md"].decode())
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values["loss"] == pytest.approx(results["eval_loss"])
    assert values["locality"] == pytest.approx(results["locality"])
    assert "posenc_attenuated" in card.data.tags
    assert 'model_id = "fake-user/posenc-attenuated-tiny"' in card.text


def test_push_in_a_fresh_process_follows_hf_endpoint(export_copy, tmp_path):
    """HF_ENDPOINT is read when huggingface_hub is imported: a new process configured only by environment."""
    script = textwrap.dedent(
        """
        import argparse, sys
        from hf_posenc.hub import add_push_arguments, run_push
        parser = add_push_arguments(argparse.ArgumentParser())
        sys.exit(run_push(parser.parse_args(sys.argv[1:])))
        """
    )
    folder = export_copy
    with FakeHub(token=TOKEN) as hub:
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.url,
            "HF_TOKEN": TOKEN,
            "HF_HOME": str(tmp_path / "hf_home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        env.pop("HF_HUB_OFFLINE", None)
        completed = subprocess.run(
            [sys.executable, "-c", script, str(folder), "fake-user/from-env"],
            cwd=Path(__file__).parent.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        assert completed.stdout.strip() == f"{hub.url}/fake-user/from-env"
        assert set(hub.repos["fake-user/from-env"].committed_files()) == set(folder_snapshot(folder))
        assert hub.unexpected == []

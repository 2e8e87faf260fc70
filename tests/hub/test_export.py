"""The Hub-ready folder: `export`, `export_run` and `hf-posenc export` (hf_posenc.hub.export)."""

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import HUB_CODE_FILES
from hub_helpers import TEXTS, folder_snapshot, mlm_logits, tiny_model, write_png
from huggingface_hub import ModelCard
from transformers import AutoModelForMaskedLM

from hf_posenc import cli
from hf_posenc.hub import MANIFEST_NAME, export
from hf_posenc.results import PLOTS_FOLDER, PretrainResult, ProbeResult

# The fixtures `exported`, `export_copy` and `hub_env`.
pytest_plugins = ["hub_fixtures"]


def test_export_writes_a_hub_ready_folder_and_lists_its_files(exported):
    folder = exported["folder"]
    files = set(folder_snapshot(folder))
    assert {"config.json", "model.safetensors", "README.md", "tokenizer_config.json", "tokenizer.json"} <= files
    assert "plots/locality_symmetry_curves.png" in files
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "posenc_rope"
    code_files = {reference.split(".")[0] + ".py" for reference in config["auto_map"].values()}
    assert code_files <= files and set(HUB_CODE_FILES) <= files
    for code_file in HUB_CODE_FILES:
        source = (folder / code_file).read_text()
        assert not re.search(r"^\s*(from|import) hf_posenc", source, flags=re.M)
    assert (folder / "plots/locality_symmetry_curves.png").read_bytes() == exported["plot"].read_bytes()
    # The manifest lists every other file with its digest; no staging folder is left behind.
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == files - {MANIFEST_NAME}
    for relative, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256((folder / relative).read_bytes()).hexdigest()
    assert not [path for path in folder.rglob("*") if "staging" in path.name]


def test_exported_folders_load_without_hf_posenc_and_give_the_same_outputs(tiny_tokenizer, tmp_path):
    """One clean process for four variants (one per route): hf_posenc is unimportable there."""
    folders, expected = {}, {}
    for variant in ("learned", "rope", "alibi", "deberta"):
        model = tiny_model(variant, tiny_tokenizer)
        folders[variant] = str(export(model, tiny_tokenizer, tmp_path / variant))
        expected[variant] = mlm_logits(model, tiny_tokenizer)
    script = textwrap.dedent(
        """
        import json, sys
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
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
            model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
            assert not type(model).__module__.startswith("hf_posenc"), type(model).__module__
            with torch.no_grad():
                logits[variant] = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
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
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    loaded = torch.load(out)
    for variant, logits in expected.items():
        torch.testing.assert_close(loaded[variant], logits, rtol=0, atol=1e-5)


def test_export_refuses_a_folder_that_holds_something_else(tiny_tokenizer, tmp_path):
    model = tiny_model("rope", tiny_tokenizer)
    target = tmp_path / "my-project"
    target.mkdir()
    (target / "notes.txt").write_text("my notes")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export(model, tiny_tokenizer, target)
    assert folder_snapshot(target) == {"notes.txt": hashlib.sha256(b"my notes").hexdigest()}

    with pytest.warns(UserWarning, match="notes.txt"):
        export(model, tiny_tokenizer, target, overwrite=True)
    assert (target / "notes.txt").read_text() == "my notes"  # never deleted
    assert (target / "model.safetensors").is_file()
    assert "notes.txt" not in json.loads((target / MANIFEST_NAME).read_text())["files"]


def test_export_refreshes_an_earlier_export_in_place(tiny_tokenizer, tmp_path):
    model = tiny_model("rope", tiny_tokenizer)
    folder = export(model, tiny_tokenizer, tmp_path / "out", {"eval_loss": 3.0})
    export(model, tiny_tokenizer, folder, {"eval_loss": 2.5})  # no overwrite needed: it is our own export
    assert ModelCard.load(folder / "README.md").data.eval_results[0].metric_value == 2.5


def test_export_checks_its_inputs_before_writing_anything(tiny_tokenizer, tmp_path):
    model = tiny_model("rope", tiny_tokenizer)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        export(model, tiny_tokenizer, tmp_path / "out", {"plots": [str(tmp_path / "missing.png")]})
    with pytest.raises(ValueError, match="Unknown key"):
        export(model, tiny_tokenizer, tmp_path / "out", {"loss": 2.0})
    assert not (tmp_path / "out").exists()


def test_export_command_turns_a_run_and_its_probe_results_into_a_card(tmp_path, tiny_tokenizer, capsys):
    """`hf-posenc export RUN DIR --probe_results ...`, in process: the run's typed results and curves go on the card."""
    run = tmp_path / "run"
    model = tiny_model("alibi", tiny_tokenizer)
    model.save_pretrained(run)
    tiny_tokenizer.save_pretrained(run)
    PretrainResult(
        variant="alibi",
        max_seq_length=48,
        train_steps=12,
        train_loss=4.9,
        eval_loss=4.5,
        perplexity=90.0,
        dataset="hf_posenc built-in corpus 'stdlib'",
        tokenizer="WordPiece trained on the training text (120 tokens)",
        locality=0.31,
        symmetry=0.9,
        symmetry_scale_aware=0.7,
    ).save(run)
    (run / PLOTS_FOLDER).mkdir()
    write_png(run / PLOTS_FOLDER / "locality_symmetry_curves.png")
    write_png(run / PLOTS_FOLDER / "heatmap_step_4.png")  # not a curve: stays out of the card
    probes = {
        "original": 0.6,
        "shuffle-3": 0.59,
        "shuffle-4": 0.6,
        "shuffle-5": 0.58,
        "shuffle-6": 0.6,
        "random": 0.57,
        "role-swap": 0.42,
        "still_entailment": 0.58,
    }
    probe_folder = tmp_path / "probe"
    ProbeResult(
        probes=probes, deltas={}, model="alibi-tiny", model_type="posenc_alibi", train_pairs=200, test_pairs=120, seed=0
    ).save(probe_folder)
    hub = tmp_path / "hub"
    arguments = ["export", str(run), str(hub), "--repo_id", "someone/posenc-alibi-tiny"]
    assert cli.main([*arguments, "--probe_results", str(probe_folder / ProbeResult.FILE_NAME)]) == 0
    assert f"wrote {hub}; upload it with: hf-posenc push {hub} someone/posenc-alibi-tiny" in capsys.readouterr().out
    card = ModelCard.load(hub / "README.md")
    reported = {(entry.metric_type, entry.dataset_config): entry.metric_value for entry in card.data.eval_results}
    assert reported[("locality", None)] == 0.31 and reported[("loss", None)] == 4.5
    assert reported[("perplexity", None)] == 90.0  # the run's own number, not recomputed
    assert reported[("accuracy", "role-swap")] == 0.42
    assert 'model_id = "someone/posenc-alibi-tiny"' in card.text
    assert "| Tokenizer | WordPiece trained on the training text (120 tokens) |" in card.text
    assert sorted(path.name for path in (hub / "plots").iterdir()) == ["locality_symmetry_curves.png"]
    assert (hub / "model.safetensors").exists() and (hub / "modeling_posenc.py").exists()
    exported_model = AutoModelForMaskedLM.from_pretrained(hub)
    torch.testing.assert_close(mlm_logits(exported_model.eval(), tiny_tokenizer), mlm_logits(model, tiny_tokenizer))

    assert cli.main(["export", str(run), str(hub), "--probe_results", str(probe_folder)]) == 0  # a folder is fine
    assert cli.main(["export", str(run), str(run)]) == 2  # the run folder is not an export
    assert "--overwrite" in capsys.readouterr().err

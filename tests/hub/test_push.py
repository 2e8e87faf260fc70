"""The upload against a local fake Hub (hf_posenc.hub.push and `hf-posenc push`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FakeHub
from hub_helpers import TOKEN, folder_snapshot, tiny_model
from huggingface_hub import ModelCard, constants

from hf_posenc import cli
from hf_posenc.hub import MANIFEST_NAME, HubPublishError, export, push
from hf_posenc.training import parse_pretrain_arguments, pretrain

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

# The fixtures `exported`, `export_copy` and `hub_env`.
pytest_plugins = ["hub_fixtures"]


def uploaded(folder: Path) -> set[str]:
    """What push should upload: the folder's files, the manifest aside."""
    return set(folder_snapshot(folder)) - {MANIFEST_NAME}


def test_push_uploads_exactly_the_exported_files(hub_env, export_copy):
    before = folder_snapshot(export_copy)
    url = push(export_copy, "fake-user/posenc-rope-tiny")  # token from HF_TOKEN
    assert url == f"{hub_env.url}/fake-user/posenc-rope-tiny"

    repo = hub_env.repos["fake-user/posenc-rope-tiny"]
    committed = repo.committed_files()
    assert set(committed) == uploaded(export_copy) == set(before) - {MANIFEST_NAME}
    for path, content in committed.items():
        assert content == (export_copy / path).read_bytes(), path
    # The card now names the repository in its usage snippet, on the Hub and in the folder alike, and the manifest
    # follows the card.
    assert b'model_id = "fake-user/posenc-rope-tiny"' in committed["README.md"]
    after = folder_snapshot(export_copy)
    assert {path for path, digest in before.items() if after[path] != digest} == {"README.md", MANIFEST_NAME}
    assert not repo.private
    ModelCard(committed["README.md"].decode())  # the uploaded card parses

    # Pushing again changes nothing on the Hub: no new commit, and no "changed since the export" note.
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        assert push(export_copy, "fake-user/posenc-rope-tiny") == url
    assert len(repo.commits) == 1


@pytest.mark.parametrize("manifest_records_the_id", [True, False])
def test_a_second_push_to_another_repository_names_that_repository(hub_env, export_copy, manifest_records_the_id):
    push(export_copy, "fake-user/first")
    if not manifest_records_the_id:  # as manifests written before the id was recorded
        document = json.loads((export_copy / MANIFEST_NAME).read_text())
        del document["card_model_id"]
        (export_copy / MANIFEST_NAME).write_text(json.dumps(document))
    with pytest.warns(
        UserWarning, match=r'named "fake-user/first" \(an earlier push\); it now names "fake-user/second"'
    ):
        push(export_copy, "fake-user/second")
    card = hub_env.repos["fake-user/second"].committed_files()["README.md"]
    assert b'model_id = "fake-user/second"' in card and b"fake-user/first" not in card
    assert (export_copy / "README.md").read_bytes() == card
    assert json.loads((export_copy / MANIFEST_NAME).read_text())["card_model_id"] == "fake-user/second"
    with __import__("warnings").catch_warnings():  # the manifest follows the card: no "changed" note
        __import__("warnings").simplefilter("error")
        push(export_copy, "fake-user/second")
    assert len(hub_env.repos["fake-user/second"].commits) == 1
    assert b'model_id = "fake-user/first"' in hub_env.repos["fake-user/first"].committed_files()["README.md"]


def test_an_export_with_a_repo_id_pushed_elsewhere_names_where_it_went(hub_env, tiny_tokenizer, tmp_path):
    folder = export(tiny_model("rope", tiny_tokenizer), tiny_tokenizer, tmp_path / "out", repo_id="fake-user/planned")
    assert json.loads((folder / MANIFEST_NAME).read_text())["card_model_id"] == "fake-user/planned"
    with pytest.warns(UserWarning, match="it now names"):
        push(folder, "fake-user/actual")
    assert b'model_id = "fake-user/actual"' in hub_env.repos["fake-user/actual"].committed_files()["README.md"]


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")  # inside huggingface_hub's LFS PUT
def test_push_through_git_lfs_when_the_hub_asks_for_it(hub_env, export_copy, monkeypatch):
    """Without Xet, files the Hub stores in LFS travel through the LFS batch API, not inside the commit."""
    hub_env.lfs_suffixes = (".safetensors",)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    push(export_copy, "fake-user/lfs-model", private=True)
    repo = hub_env.repos["fake-user/lfs-model"]
    assert repo.private and repo.lfs_paths == {"model.safetensors"}
    assert repo.files["model.safetensors"] == (export_copy / "model.safetensors").read_bytes()
    assert set(repo.committed_files()) == uploaded(export_copy)


def test_push_survives_one_dropped_connection_during_the_commit(hub_env, export_copy):
    hub_env.fail("commit", drop=True, times=1)
    push(export_copy, "fake-user/flaky")
    assert [r.status for r in hub_env.requests if r.route == "commit"] == [None, 200]
    assert set(hub_env.repos["fake-user/flaky"].committed_files()) == uploaded(export_copy)


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
    assert folder_snapshot(export_copy) == before  # the card keeps its placeholder
    assert not any(repo.commits for repo in hub_env.repos.values())


def test_push_reports_metadata_the_hub_rejects(hub_env, export_copy):
    readme = export_copy / "README.md"
    readme.write_text(readme.read_text().replace("value: 3.2188", "value: not-a-number", 1))
    before = folder_snapshot(export_copy)
    with (
        pytest.raises(HubPublishError, match="rejected the metadata") as caught,
        pytest.warns(UserWarning, match="Changed"),
    ):
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
    assert cli.main(["push", str(export_copy), "fake-user/cli-model", "--private"]) == 0
    assert capsys.readouterr().out.strip() == f"{hub_env.url}/fake-user/cli-model"
    assert hub_env.repos["fake-user/cli-model"].private

    assert cli.main(["push", str(export_copy), "fake-user/cli-model", "--token", "hf_wrong"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hf-posenc push: error: ") and "rejected the token" in error


def test_pretrain_push_to_hub_publishes_the_trained_model(hub_env, tmp_path):
    """pretrain(... push_to_hub=True): a tiny run, exported and uploaded with its card and curves."""
    result = pretrain(
        **parse_pretrain_arguments(
            [
                *("--variant", "attenuated", "--output_dir", str(tmp_path / "run")),
                *("--push_to_hub", "--hub_model_id", "fake-user/posenc-attenuated-tiny"),
                *("--corpus", "stdlib", "--vocab_size", "500", "--max_seq_length", "32"),
                "--config_overrides",
                "hidden_size=32,num_hidden_layers=2,num_attention_heads=4,intermediate_size=64",
                *("--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8"),
                *("--max_steps", "4", "--logging_steps", "2", "--eval_steps", "4", "--save_steps", "4"),
                *("--warmup_steps", "0", "--posenc_probe_sequences", "4", "--disable_tqdm", "true"),
                *("--dataloader_pin_memory", "false", "--report_to", "none"),
            ]
        )
    )
    committed = hub_env.repos["fake-user/posenc-attenuated-tiny"].committed_files()
    assert {"config.json", "model.safetensors", "modeling_posenc.py", "README.md", "tokenizer.json"} <= set(committed)
    assert MANIFEST_NAME not in committed
    card = ModelCard(committed["README.md"].decode())
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values["loss"] == pytest.approx(result.eval_loss)
    assert values["locality"] == pytest.approx(result.locality)
    assert "posenc_attenuated" in card.data.tags
    assert 'model_id = "fake-user/posenc-attenuated-tiny"' in card.text


def test_push_in_a_fresh_process_follows_hf_endpoint(export_copy, tmp_path):
    """HF_ENDPOINT is read when huggingface_hub is imported: `hf-posenc push` in a new process configured only by
    environment, with a stray .env beside the export that must stay home."""
    (export_copy / ".env").write_text("HF_TOKEN=hf_secret\n")
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
            [sys.executable, "-m", "hf_posenc.cli", "push", str(folder), "fake-user/from-env"],
            cwd=REPOSITORY_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        assert completed.stdout.strip() == f"{hub.url}/fake-user/from-env"
        assert "hf-posenc push: note: Not uploaded from" in completed.stderr and ".env" in completed.stderr
        committed = hub.repos["fake-user/from-env"].committed_files()
        assert set(committed) == uploaded(folder) - {".env"}
        assert b"hf_secret" not in b"".join(committed.values())
        assert hub.unexpected == []
    assert json.loads((folder / MANIFEST_NAME).read_text())["files"].keys() == set(committed)


def test_the_stand_in_hub_runs_as_a_program_for_trying_push(export_copy, tmp_path):
    """`python tests/fake_hub.py` (docs/hub.md, "Trying push without the Hub"): the printed variables are enough."""
    server = subprocess.Popen(
        [sys.executable, str(REPOSITORY_ROOT / "tests" / "fake_hub.py")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        settings = dict(item.split("=", 1) for item in server.stdout.readline().split("#")[0].split()[1:])
        env = {**os.environ, **settings, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        env.pop("HF_HUB_OFFLINE", None)
        pushed = subprocess.run(
            [sys.executable, "-m", "hf_posenc", "push", str(export_copy), "fake-user/tried"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert pushed.returncode == 0, pushed.stderr[-3000:]
    finally:
        server.terminate()
        listing, _ = server.communicate(timeout=30)
    assert f"fake-user/tried: {len(uploaded(export_copy))} file(s): " in listing and "README.md" in listing

"""Bad input, faults and misuse on the Hub path: what `push` uploads, repository ids, strings on the card, the usage
snippet, symbolic links and odd targets for `export`, malformed result files, and code a run folder carries."""

import ast
import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hub_helpers import folder_snapshot, tiny_model, write_png
from huggingface_hub import ModelCard

from hf_posenc import cli
from hf_posenc.hub import MANIFEST_NAME, export, export_run, normalize_results, push, python_string, render_card
from hf_posenc.results import PLOTS_FOLDER, FinetuneResult, PretrainResult, ProbeResult

# The fixtures `exported`, `export_copy` and `hub_env`.
pytest_plugins = ["hub_fixtures"]

BAD_REPO_IDS = [
    'user/name"; import os; os.system("echo owned") #',
    "user/name\nimport os",
    "user/na--me",
    "user/name..v2",
    "user/name.git",
    "a/b/c",
    "user/ñame",
    "-user/name",
    "user/name-",
    "user/" + "x" * 97,
    "user/",
    "",
    "user name/model",
    "user/<script>",
]
# A quote, a newline, Markdown and HTML in every user string the card shows.
NASTY = 'Evil "quoted" name\nnext line <script>alert(1)</script> *bold* _it_ [link](http://x) | cell ` tick $x$ & co'


# ------------------------------------------------------------------------------------------------ what push uploads
def test_push_leaves_out_stray_files_and_says_so(hub_env, export_copy):
    (export_copy / ".env").write_text("HF_TOKEN=hf_secret\n")
    (export_copy / "notes").mkdir()
    (export_copy / "notes" / "todo.txt").write_text("private notes")
    with pytest.warns(UserWarning, match=r"Not uploaded from .*\.env, notes/todo\.txt"):
        push(export_copy, "fake-user/model")
    committed = hub_env.repos["fake-user/model"].committed_files()
    listed = json.loads((export_copy / MANIFEST_NAME).read_text())["files"]
    assert set(committed) == set(listed)
    assert not {".env", "notes/todo.txt", MANIFEST_NAME} & set(committed)


def test_push_command_names_what_it_left_out(hub_env, export_copy, capsys):
    (export_copy / ".env").write_text("HF_TOKEN=hf_secret\n")
    assert cli.main(["push", str(export_copy), "fake-user/model"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{hub_env.url}/fake-user/model"
    assert captured.err.startswith("hf-posenc push: note: Not uploaded from") and ".env" in captured.err


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_push_refuses_an_exported_file_replaced_by_a_symlink(hub_env, export_copy, tmp_path, where):
    """A link in place of README.md would upload whatever it points to: a secret elsewhere, or the folder's .env."""
    secret = tmp_path / "secret.txt" if where == "outside" else export_copy / ".env"
    secret.write_text("HF_TOKEN=hf_secret\n")
    (export_copy / "README.md").unlink()
    (export_copy / "README.md").symlink_to(secret)
    with pytest.raises(ValueError, match=f"README.md is a symbolic link .*{where} the folder"):
        push(export_copy, "fake-user/model")
    assert hub_env.requests == []


def test_push_refuses_a_linked_subfolder_and_never_uploads_a_stray_link(hub_env, export_copy, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "id_rsa").write_text("PRIVATE KEY")
    (export_copy / "keys").symlink_to(elsewhere)  # a stray link: not listed, left out
    (export_copy / "key.txt").symlink_to(elsewhere / "id_rsa")
    with pytest.warns(UserWarning, match=r"key\.txt, keys/"):
        push(export_copy, "fake-user/model")
    committed = hub_env.repos["fake-user/model"].committed_files()
    assert b"PRIVATE KEY" not in b"".join(committed.values())

    shutil.move(export_copy / "plots", elsewhere / "plots")
    (export_copy / "plots").symlink_to(elsewhere / "plots")
    with pytest.raises(ValueError, match="plots is a symbolic link"):
        push(export_copy, "fake-user/model")


@pytest.mark.parametrize("listed", ["README.md", "plots/locality_symmetry_curves.png"])
def test_push_refuses_an_exported_file_replaced_by_a_hard_link(hub_env, export_copy, tmp_path, listed):
    """A hard link is a second name of another file on the same disk: its content is that file's, a secret maybe."""
    secret = tmp_path / "secret.txt"
    secret.write_text("HF_TOKEN=hf_secret\n")
    (export_copy / listed).unlink()
    os.link(secret, export_copy / listed)
    with pytest.raises(ValueError, match=rf"{re.escape(listed)} is a hard link \(2 names for one file\).*export"):
        push(export_copy, "fake-user/model")
    assert hub_env.requests == []
    assert cli.main(["push", str(export_copy), "fake-user/model"]) == 2  # one line on the command line, too


def test_re_export_replaces_a_hard_link_with_a_file_of_its_own(tiny_tokenizer, tmp_path):
    model = tiny_model("rope", tiny_tokenizer)
    folder = export(model, tiny_tokenizer, tmp_path / "out")
    secret = tmp_path / "secret.txt"
    secret.write_text("mine")
    (folder / "tokenizer_config.json").unlink()
    os.link(secret, folder / "tokenizer_config.json")
    with pytest.warns(UserWarning, match=r"Replaced in .*: tokenizer_config.json, which differed"):
        export(model, tiny_tokenizer, folder)
    assert secret.read_text() == "mine" and (folder / "tokenizer_config.json").stat().st_nlink == 1


def test_push_takes_file_names_literally(hub_env, tiny_tokenizer, tmp_path):
    """A plot named `curve[1].png` must not let a stray `curve1.png` through (upload patterns are fnmatch)."""
    plot = write_png(tmp_path / "curve[1]*.png")
    folder = export(tiny_model("rope", tiny_tokenizer), tiny_tokenizer, tmp_path / "out", {"plots": [str(plot)]})
    write_png(folder / "plots" / "curve1x.png")
    with pytest.warns(UserWarning, match="curve1x.png"):
        push(folder, "fake-user/model")
    committed = hub_env.repos["fake-user/model"].committed_files()
    assert "plots/curve[1]*.png" in committed and "plots/curve1x.png" not in committed
    assert "![curve\\[1\\]\\*](plots/curve%5B1%5D%2A.png)" in committed["README.md"].decode()


def test_push_refuses_a_folder_export_did_not_write(hub_env, export_copy):
    (export_copy / MANIFEST_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="hf-posenc export"):
        push(export_copy, "fake-user/model")
    assert cli.main(["push", str(export_copy), "fake-user/model"]) == 2
    assert hub_env.requests == []


@pytest.mark.parametrize(
    "damage, error, expected",
    [
        ("missing file", FileNotFoundError, "listed in export_manifest.json but missing"),
        ("path out of the folder", ValueError, "not a plain path inside the folder"),
        ("not JSON", ValueError, "export_manifest.json is not valid JSON"),
        ("wrong shape", ValueError, "must hold"),
        ("directory in place of a file", ValueError, "is not a regular file"),
    ],
)
def test_push_refuses_a_damaged_manifest(hub_env, export_copy, damage, error, expected):
    manifest_path = export_copy / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    if damage == "missing file":
        (export_copy / "tokenizer.json").unlink()
    elif damage == "path out of the folder":
        manifest["files"]["../secret.txt"] = {"sha256": "0" * 64, "size": 1}
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "not JSON":
        manifest_path.write_text("{ not json")
    elif damage == "wrong shape":
        manifest_path.write_text(json.dumps({"files": ["README.md"]}))
    else:
        (export_copy / "tokenizer.json").unlink()
        (export_copy / "tokenizer.json").mkdir()
    with pytest.raises(error, match=expected):
        push(export_copy, "fake-user/model")
    assert hub_env.requests == []


# ------------------------------------------------------------------------------------------------ repository ids
@pytest.mark.parametrize("repo_id", BAD_REPO_IDS)
def test_bad_repository_ids_are_refused_before_anything_is_written_or_sent(
    hub_env, export_copy, tiny_tokenizer, tmp_path, repo_id
):
    with pytest.raises(ValueError, match="not a valid Hub repository id"):
        push(export_copy, repo_id)
    assert hub_env.requests == []
    model = tiny_model("rope", tiny_tokenizer)
    with pytest.raises(ValueError, match="not a valid Hub repository id"):
        export(model, tiny_tokenizer, tmp_path / "out", repo_id=repo_id)
    assert not (tmp_path / "out").exists()


def test_repository_ids_follow_the_hubs_rules(tiny_tokenizer):
    config = tiny_model("rope", tiny_tokenizer).config
    for good in ("user/name", "User_1/posenc-rope.v2", "org-name/x"):
        assert f"model_id = {python_string(good)}" in str(render_card(config, repo_id=good))
    with pytest.raises(ValueError, match="needs a namespace"):  # a card needs the full id for its snippet
        render_card(config, repo_id="name-only")


def test_export_command_refuses_a_bad_repo_id_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model_type": "posenc_rope"}))
    assert cli.main(["export", str(run), str(tmp_path / "out"), "--repo_id", 'a"/b']) == 2
    error = capsys.readouterr().err
    assert error.startswith("hf-posenc export: error: repo_id 'a\"/b' is not a valid Hub repository id")
    assert error.count("\n") == 1 and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ strings on the card
def test_user_strings_are_escaped_in_the_metadata_the_markdown_and_the_snippet(tiny_tokenizer):
    config = tiny_model("rope", tiny_tokenizer).config
    results = {
        "dataset": NASTY,
        "dataset_name": NASTY,
        "dataset_config": NASTY,
        "tokenizer": NASTY,
        "measured_on": NASTY,
        "probe_dataset": NASTY,
        "eval_loss": 2.0,
        "locality": 0.5,
        "probes": {"original": 0.5},
    }
    card = render_card(config, results, model_name=NASTY, tags=[NASTY])
    text = str(card)
    metadata, body = text.split("\n---\n", 1)

    # The metadata is valid YAML that gives the strings back exactly as they were.
    parsed = yaml.safe_load(metadata.removeprefix("---\n"))
    assert parsed["model-index"][0]["name"] == NASTY and NASTY in parsed["tags"]
    assert ModelCard(text).data.model_name == NASTY

    # In the Markdown: no HTML, link, emphasis, math or extra table cell, and no line of its own.
    assert "<script>" not in body and "&lt;script&gt;" in body
    for raw in ("*bold*", "_it_", "[link](http://x)", "$x$"):
        assert raw not in body
    title = next(line for line in body.splitlines() if line.startswith("# "))
    assert "next line &lt;script&gt;" in title and title.endswith("&amp; co")  # escaped, on one line
    assert "\nnext line" not in body
    for row in (line for line in body.splitlines() if line.startswith("| Data |")):
        assert len(re.findall(r"(?<!\\)\|", row)) == 3  # the row keeps its two cells

    # The snippet is valid Python and names the placeholder, whatever the strings.
    snippet = re.search(r"```python\n(.*?)```", body, re.S).group(1)
    ast.parse(snippet)


def test_python_string_literals_survive_quotes_and_newlines():
    for text in ('a"b', "a'b", "line\nbreak", "back\\slash", NASTY):
        assert ast.literal_eval(python_string(text)) == text


# ------------------------------------------------------------------------------------------------ usage snippet
def test_the_cards_usage_snippet_runs_as_written_without_a_prompt(exported, tmp_path):
    """Copied from the card into a file and run in a clean process without stdin: no `trust_remote_code` question,
    no hf_posenc. Only the repository id is replaced by the local folder."""
    folder = exported["folder"]
    card = (folder / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    snippet, replaced = re.subn(r'model_id = "[^"]*"', f"model_id = {python_string(str(folder))}", snippet)
    assert replaced == 1
    script = tmp_path / "snippet.py"
    script.write_text(
        "import sys\nsys.modules['hf_posenc'] = None  # a reader without hf_posenc\n"
        + snippet
        + "\nassert len(attentions) == 2 and attentions[0].shape[1] == 4\nprint('snippet ok')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PYTHONPATH": ""}
    completed = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    assert "snippet ok" in completed.stdout
    assert "Do you wish to run the custom code" not in output


# ------------------------------------------------------------------------------------------------ where export writes
def test_export_replaces_symlinks_instead_of_writing_through_them(tiny_tokenizer, tmp_path):
    model = tiny_model("rope", tiny_tokenizer)
    folder = export(model, tiny_tokenizer, tmp_path / "out")
    victim = tmp_path / "victim.md"
    victim.write_text("my own file")
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(victim)
    export(model, tiny_tokenizer, folder)
    assert victim.read_text() == "my own file"
    assert not (folder / "README.md").is_symlink() and "## Usage" in (folder / "README.md").read_text()


def test_export_refuses_a_linked_plots_folder(tiny_tokenizer, tmp_path):
    model = tiny_model("rope", tiny_tokenizer)
    folder = export(model, tiny_tokenizer, tmp_path / "out")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "plots").symlink_to(elsewhere)
    before = folder_snapshot(folder)
    plot = write_png(tmp_path / "locality_curves.png")
    with pytest.raises(FileExistsError, match="plots is a symbolic link"):
        export(model, tiny_tokenizer, folder, {"plots": [str(plot)]})
    assert list(elsewhere.iterdir()) == [] and folder_snapshot(folder) == before
    assert not [path for path in folder.iterdir() if "staging" in path.name]


def _make_read_only(folder: Path):
    """Make `folder` refuse new entries, even for root (which ignores permissions: the immutable flag then)."""
    folder.chmod(0o555)
    probe = folder / ".probe"
    try:
        probe.touch()
    except PermissionError:
        return lambda: folder.chmod(0o755)
    probe.unlink()
    folder.chmod(0o755)
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    pytest.skip("cannot make a folder read-only here")


def test_export_into_a_folder_whose_parent_is_read_only(tiny_tokenizer, tmp_path):
    """Like a mount point: the target exists and is writable, its parent is not. Nothing is staged in the parent."""
    parent = tmp_path / "read-only-parent"
    target = parent / "mount"
    target.mkdir(parents=True)
    undo = _make_read_only(parent)
    try:
        with pytest.raises(PermissionError):
            (parent / "x").touch()
        folder = export(tiny_model("rope", tiny_tokenizer), tiny_tokenizer, target)
    finally:
        undo()
    assert (folder / "model.safetensors").is_file() and (folder / MANIFEST_NAME).is_file()
    assert sorted(path.name for path in parent.iterdir()) == ["mount"]


def test_export_never_renames_across_folders_that_may_be_other_filesystems(tiny_tokenizer, tmp_path, monkeypatch):
    """A rename that leaves the target folder fails with EXDEV, as it does between filesystems."""
    target = tmp_path / "target"
    real_replace = os.replace

    def replace_on_one_filesystem(source, destination, *args, **kwargs):
        inside = [Path(path).resolve().is_relative_to(target.resolve()) for path in (source, destination)]
        if inside[0] != inside[1]:
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))
        return real_replace(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace_on_one_filesystem)
    folder = export(tiny_model("rope", tiny_tokenizer), tiny_tokenizer, target)
    assert (folder / "model.safetensors").is_file()


# ------------------------------------------------------------------------------------------------ result files
@pytest.fixture
def run_folder(tiny_tokenizer, tmp_path):
    run = tmp_path / "run"
    tiny_model("alibi", tiny_tokenizer).save_pretrained(run)
    tiny_tokenizer.save_pretrained(run)
    return run


PRETRAIN_VALUES = {
    "variant": "alibi",
    "max_seq_length": 48,
    "train_steps": 4,
    "train_loss": 5.0,
    "eval_loss": 4.5,
    "perplexity": 90.0,
    "dataset": "stdlib",
    "tokenizer": "WordPiece",
}


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{ not json", r"posenc_results.json is not valid JSON"),
        (json.dumps([1, 2]), r"posenc_results.json must hold a JSON object"),
        (json.dumps({**PRETRAIN_VALUES, "eval_los": 1.0}), r"posenc_results.json has unknown key\(s\) eval_los"),
        (json.dumps({"variant": "alibi"}), r"posenc_results.json is not a complete PretrainResult.*max_seq_length"),
        (json.dumps({**PRETRAIN_VALUES, "eval_loss": "low"}), r"posenc_results.json\['eval_loss'\] must be a number"),
        (json.dumps({**PRETRAIN_VALUES, "per_layer": {"locality": 1}}), r"posenc_results.json\['per_layer'\] must be"),
        (json.dumps({**PRETRAIN_VALUES, "variant": "rope"}), r"posenc_results.json\['variant'\] is 'rope'"),
    ],
)
def test_a_malformed_posenc_results_json_is_named_with_its_key(run_folder, tmp_path, content, expected):
    (run_folder / PretrainResult.FILE_NAME).write_text(content)
    with pytest.raises(ValueError, match=expected):
        export_run(run_folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "probes, model_type, expected",
    [
        ([0.5, 0.6], "posenc_alibi", r"probe_results.json\['probes'\] must be a dict"),
        ({"original": 81.0}, "posenc_alibi", r"probe_results.json\['probes'\]\['original'\] = 81.0 is not a fraction"),
        ({"original": "high"}, "posenc_alibi", r"probe_results.json\['probes'\]\['original'\] must be a number"),
        ({"origin": 0.5}, "posenc_alibi", r"Unknown probe 'origin' in .*probe_results.json"),
        ({"original": 0.5}, "posenc_rope", r"probe results of a 'posenc_rope' model"),
    ],
)
def test_a_malformed_probe_results_json_is_named_with_its_key(run_folder, tmp_path, probes, model_type, expected):
    ProbeResult(probes=probes, deltas={}, model="m", model_type=model_type, train_pairs=1, test_pairs=1, seed=0).save(
        tmp_path
    )
    with pytest.raises(ValueError, match=expected):
        export_run(run_folder, tmp_path / "out", probe_results=tmp_path / ProbeResult.FILE_NAME)
    assert not (tmp_path / "out").exists()


def test_result_file_errors_reach_the_command_line_as_one_line(run_folder, tmp_path, capsys):
    (tmp_path / "probe_results.json").write_text(json.dumps({"probes": {"original": 0.5}}))  # incomplete
    arguments = ["export", str(run_folder), str(tmp_path / "out"), "--probe_results", str(tmp_path)]
    assert cli.main(arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith("hf-posenc export: error: ") and error.count("\n") == 1
    assert "probe_results.json is not a complete ProbeResult" in error and "model_type" in error
    assert cli.main(["export", str(run_folder), str(tmp_path / "out"), "--probe_results", str(tmp_path / "no")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_linked_curve_plots_stay_out_of_the_export(run_folder, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not a plot of this run")
    (run_folder / PLOTS_FOLDER).mkdir()
    (run_folder / PLOTS_FOLDER / "loss_curves.png").symlink_to(secret)
    with pytest.warns(UserWarning, match="loss_curves.png are not regular files"):
        folder = export_run(run_folder, tmp_path / "out")
    assert not (folder / "plots").exists()


def test_hard_linked_curve_plots_stay_out_of_the_export(run_folder, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not a plot of this run")
    (run_folder / PLOTS_FOLDER).mkdir()
    os.link(secret, run_folder / PLOTS_FOLDER / "loss_curves.png")
    write_png(run_folder / PLOTS_FOLDER / "locality_curves.png")
    with pytest.warns(UserWarning, match="loss_curves.png are hard links"):
        folder = export_run(run_folder, tmp_path / "out")
    assert sorted(path.name for path in (folder / "plots").iterdir()) == ["locality_curves.png"]
    assert b"not a plot of this run" not in b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())


# ------------------------------------------------------------------------------------------------ re-export
def test_re_export_refuses_a_hand_edited_card_unless_told(tiny_tokenizer, tmp_path, capsys):
    model = tiny_model("rope", tiny_tokenizer)
    folder = export(model, tiny_tokenizer, tmp_path / "out", {"eval_loss": 3.0})
    card = folder / "README.md"
    card.write_text(card.read_text() + "\nMy own notes about this model.\n")
    edited = folder_snapshot(folder)
    with pytest.raises(FileExistsError, match=r"README.md is not the card the last export wrote.*replace_card=True"):
        export(model, tiny_tokenizer, folder, {"eval_loss": 2.5})
    assert folder_snapshot(folder) == edited  # nothing written

    with pytest.warns(UserWarning, match=r"Replaced in .*: README.md, which differed from what the last export"):
        export(model, tiny_tokenizer, folder, {"eval_loss": 2.5}, replace_card=True)
    assert "My own notes" not in card.read_text()
    assert ModelCard.load(card).data.eval_results[0].metric_value == 2.5


def test_re_export_names_every_file_it_replaces_that_was_edited(tiny_tokenizer, tmp_path):
    model = tiny_model("rope", tiny_tokenizer)
    folder = export(model, tiny_tokenizer, tmp_path / "out")
    (folder / "tokenizer_config.json").write_text("{}")
    with pytest.warns(UserWarning) as caught:
        export(model, tiny_tokenizer, folder)
    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 1 and ": tokenizer_config.json, which differed" in messages[0]
    with __import__("warnings").catch_warnings():  # an untouched export is refreshed without a word
        __import__("warnings").simplefilter("error")
        export(model, tiny_tokenizer, folder)


def test_overwrite_keeps_a_users_own_readme(run_folder, tmp_path, capsys):
    target = tmp_path / "my-project"
    target.mkdir()
    (target / "README.md").write_text("# My project\n")
    assert cli.main(["export", str(run_folder), str(target), "--overwrite"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hf-posenc export: error: ") and "README.md is not the card" in error
    assert "--replace_card" in error and error.count("\n") == 1
    assert sorted(path.name for path in target.iterdir()) == ["README.md"]
    assert (target / "README.md").read_text() == "# My project\n"

    assert cli.main(["export", str(run_folder), str(target), "--overwrite", "--replace_card"]) == 0
    assert "note: Replaced in" in capsys.readouterr().err
    assert "## Usage" in (target / "README.md").read_text()


# ------------------------------------------------------------------------------------------------ code in a run folder
def _plant_code(run: Path, model_type: str) -> Path:
    """Make the run's config name its own code file, which writes a marker when it runs."""
    marker = run.parent / "code-ran.txt"
    (run / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PretrainedConfig, PreTrainedModel\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
        "class EvilModel(PreTrainedModel):\n    config_class = EvilConfig\n"
    )
    config = json.loads((run / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForMaskedLM": "evil.EvilModel"}
    (run / "config.json").write_text(json.dumps(config))
    return marker


def test_export_run_never_runs_code_the_run_folder_names(run_folder, tmp_path, tiny_tokenizer):
    """An hf_posenc model type loads with hf_posenc's own classes, whatever auto_map says; the export carries
    hf_posenc's code, not the folder's."""
    marker = _plant_code(run_folder, "posenc_alibi")
    folder = export_run(run_folder, tmp_path / "out")
    assert not marker.exists()
    assert not (folder / "evil.py").exists()
    assert "evil" not in json.dumps(json.loads((folder / "config.json").read_text())["auto_map"])
    from transformers import AutoModelForMaskedLM

    assert AutoModelForMaskedLM.from_pretrained(folder).config.model_type == "posenc_alibi"
    assert (folder / "tokenizer.json").is_file()


def test_export_run_refuses_a_model_that_is_not_an_hf_posenc_variant(run_folder, tmp_path):
    marker = _plant_code(run_folder, "evil")
    with pytest.raises(ValueError, match="not an hf_posenc variant"):
        export_run(run_folder, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ fine-tuning results
def _finetune_summary(**report_overrides):
    report = {"accuracy": {"mean": 0.75, "std": 0.05, "values": [0.7, 0.8]}, **report_overrides}
    return {
        "kind": "single-sentence classification",
        "main_metric": "accuracy",
        "report_split": "test",
        "best_learning_rate": 1e-4,
        "seeds": [1, 2],
        "report": report,
    }


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{ not json", r"finetune_results.json is not valid JSON"),
        (json.dumps({"model": "m", "model_type": "posenc_alibi", "complet": True}), r"unknown key\(s\) complet"),
        (
            json.dumps({"model": "m", "model_type": "posenc_alibi", "cells": [{}], "complete": False}),
            r"finetune_results.json holds an unfinished fine-tuning run \(1 cell\(s\) done.*Rerun `hf-posenc finetune`",
        ),
        (
            json.dumps(
                {"model": "m", "model_type": "posenc_rope", "tasks": {"s": _finetune_summary()}, "complete": True}
            ),
            r"fine-tuning results of a 'posenc_rope' model",
        ),
        (
            json.dumps(
                {
                    "model": "m",
                    "model_type": "posenc_alibi",
                    "complete": True,
                    "tasks": {"s": _finetune_summary(f1={"mean": "high"})},
                }
            ),
            r"finetune_results.json\['finetune'\]\['s'\]\['metrics'\]\['f1'\] must be a number",
        ),
        (
            json.dumps(
                {
                    "model": "m",
                    "model_type": "posenc_alibi",
                    "complete": True,
                    "tasks": {"s": _finetune_summary(f1={"std": 0.1})},
                }
            ),
            r"\['tasks'\]\['s'\]\['report'\]\['f1'\] must be a dict with a 'mean'",
        ),
    ],
)
def test_a_malformed_or_unfinished_finetune_results_json_is_refused_by_name(run_folder, tmp_path, content, expected):
    (tmp_path / FinetuneResult.FILE_NAME).write_text(content)
    with pytest.raises(ValueError, match=expected):
        export_run(run_folder, tmp_path / "out", finetune_results=tmp_path)
    assert not (tmp_path / "out").exists()


def test_an_unfinished_finetune_run_reaches_the_command_line_as_one_line(run_folder, tmp_path, capsys):
    FinetuneResult(model="m", model_type="posenc_alibi").save(tmp_path)
    arguments = ["export", str(run_folder), str(tmp_path / "out"), "--finetune_results"]
    assert cli.main([*arguments, str(tmp_path / FinetuneResult.FILE_NAME)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hf-posenc export: error: ") and error.count("\n") == 1 and "unfinished" in error
    assert cli.main([*arguments, str(tmp_path / "nowhere")]) == 2
    assert "pass the finetune_results.json of `hf-posenc finetune`" in capsys.readouterr().err


@pytest.mark.parametrize(
    "entry, expected",
    [
        (
            {"split": "test", "metrics": {"accuracy": 0.8}, "accuracy": 0.8},
            r"\['sst2'\] has unknown field\(s\) accuracy; known: split",
        ),
        ({"split": "test", "metrics": {"accuracy": "81%"}}, r"\['sst2'\]\['metrics'\]\['accuracy'\] must be a number"),
        ({"split": "test", "metrics": {}}, r"\['sst2'\]\['metrics'\] is empty"),
        ({"split": "test"}, r"\['sst2'\] has no 'metrics'; give a dict of metric name -> mean"),
        ({"metrics": {"accuracy": 0.8}}, r"\['sst2'\] has no 'split'"),
        ({"split": "test", "metrics": {"accuracy": 0.8}, "main_metric": "f1"}, r"'main_metric'\] is 'f1', not one of"),
        ({"split": "test", "metrics": {"accuracy": 0.8}, "std": {"f1": 0.1}}, r"'std'\] has metric\(s\) f1"),
        ({"split": "test", "metrics": {"accuracy": 0.8}, "seeds": 0}, r"'seeds'\] must be at least 1"),
        (
            {"split": "test", "metrics": {"accuracy": 0.8}, "learning_rate": -1},
            r"'learning_rate'\] must be a number above 0",
        ),
        ({"split": "test", "metrics": {"accuracy": 0.8}, "kind": "tagging"}, r"'kind'\] must be one of"),
        ([0.8], r"results\['finetune'\]\['sst2'\] must be a dict with 'split' and 'metrics'"),
    ],
)
def test_hand_written_finetune_scores_are_checked_field_by_field(entry, expected):
    with pytest.raises(ValueError, match=expected):
        normalize_results({"finetune": {"sst2": entry}})

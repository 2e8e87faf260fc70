"""Bad study specs and folders: a clear error (with the file's line where there is one) before anything trains."""

import json

import pytest
import yaml

from hf_posenc import cli
from hf_posenc.study import load_spec, parse_spec
from hf_posenc.study.runner import check_study_folder, select_runs

GOOD = """\
name: bad-input
pretraining:
  size: tiny
  corpus: stdlib
  max_seq_length: 32
  vocab_size: 500
  steps: 4
runs:
  - variant: rope
  - name: att
    variant: attenuated
    grid:
      attenuation_strength: [0.05, 0.5]
evaluations:
  tasks: [sentiment]
"""


def spec_error(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_spec(path)
    return str(caught.value)


def test_the_good_spec_loads(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(GOOD)
    spec = load_spec(path)
    assert [run.name for run in spec.runs] == ["rope", "att-w0.05", "att-w0.5"]


@pytest.mark.parametrize(
    "old, new, line, words",
    [
        ("  - variant: rope", "  - variant: rotary", 9, ["unknown variant 'rotary'", "rope"]),
        ("  - variant: rope", "  - variant: rope\n    settings: {attenuation_symmetry: 2}", 10,
         ["attenuation_symmetry", "belongs to the attenuated", "not to 'rope'"]),
        ("      attenuation_strength: [0.05, 0.5]", "      rope_theta: [100, 1000]", 13,
         ["grid over 'rope_theta'", "rope variant", "not to 'attenuated'"]),
        ("      attenuation_strength: [0.05, 0.5]", "      strength: [0.05, 0.5]", 13,
         ["grid over 'strength'", "no such parameter"]),
        ("  tasks: [sentiment]", "  tasks: [sentiment, parsing]", 15, ["unknown task 'parsing'"]),
        ("  steps: 4", "  steps: 0", 7, ["steps: 0 trains nothing"]),
        ("  steps: 4", "  tokens: 0", 7, ["tokens: 0 trains nothing"]),
        ("  steps: 4", "  learning_rate: 0.001", 2, ["exactly one of 'steps: N' or 'tokens: N'"]),
        ("  - variant: rope", "  - variant: rope\n  - variant: rope", 10, ["two runs are named 'rope'", "line 9"]),
        ("  size: tiny", "  size: huge", 3, ["unknown size 'huge'"]),
        ("  - variant: rope", "  - variant: rope\n    settings: {attenuation_strenght: 1}", 10, ["did you mean"]),
        ("      attenuation_strength: [0.05, 0.5]", "      attenuation_strength: [-1]", 10, ["make no valid model"]),
        ("  steps: 4", "  steps: 4\n  learning_rate: .inf", 8, ["learning_rate must be a finite number above 0"]),
        ("  steps: 4", "  steps: 4\n  training: {hub_token: hf_secret}", 8,
         ["training.hub_token is a secret", "written in clear", "HF_TOKEN"]),
    ],
)  # fmt: skip
def test_a_bad_spec_names_its_line(tmp_path, old, new, line, words):
    assert old in GOOD
    message = spec_error(tmp_path, GOOD.replace(old, new, 1))
    assert f"spec.yaml, line {line}:" in message, message
    for word in words:
        assert word in message, message


def test_duplicate_names_from_a_grid_and_a_run(tmp_path):
    text = GOOD.replace("  - variant: rope", "  - {name: att-w0.5, variant: attenuated}")
    message = spec_error(tmp_path, text)
    assert "two runs are named 'att-w0.5'" in message and "line 9" in message


def test_invalid_yaml_says_the_line(tmp_path):
    message = spec_error(tmp_path, GOOD.replace("  - variant: rope", "  - variant: [rope"))
    assert "not valid YAML" in message and "line 1" in message  # the unclosed flow sequence's problem line


def test_invalid_json_says_the_line(tmp_path):
    text = json.dumps(yaml.safe_load(GOOD), indent=2).replace('"rope"', '"rope",', 1)
    message = spec_error(tmp_path, text, name="spec.json")
    line = next(number for number, content in enumerate(text.splitlines(), 1) if '"rope",' in content)
    assert "not valid JSON" in message and f"line {line}" in message or f"line {line + 1}" in message


def test_a_json_spec_with_a_bad_variant_names_its_line(tmp_path):
    values = yaml.safe_load(GOOD)
    values["runs"][0]["variant"] = "rotary"
    text = json.dumps(values, indent=2)
    message = spec_error(tmp_path, text, name="spec.json")
    line = next(number for number, content in enumerate(text.splitlines(), 1) if "rotary" in content)
    assert f"line {line}" in message and "unknown variant 'rotary'" in message


def test_a_missing_spec_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_spec(tmp_path / "none.yaml")


def test_unknown_runs_selection():
    spec = parse_spec(yaml.safe_load(GOOD))
    assert [run.name for run in select_runs(spec, ["att"])] == ["att-w0.05", "att-w0.5"]
    with pytest.raises(ValueError, match="no run or grid of that name"):
        select_runs(spec, ["alibi"])


def saved_folder(tmp_path, values):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study_spec.json").write_text(json.dumps(parse_spec(values).to_dict()))
    return folder


def test_a_folder_with_another_spec_is_refused(tmp_path):
    values = yaml.safe_load(GOOD)
    folder = saved_folder(tmp_path, values)
    changed = yaml.safe_load(GOOD)
    changed["pretraining"]["steps"] = 8
    with pytest.raises(FileExistsError, match=r"pretraining: steps changed"):
        check_study_folder(parse_spec(changed), folder)
    changed = yaml.safe_load(GOOD)
    changed["runs"][1]["grid"]["attenuation_strength"] = [0.05, 0.7]
    with pytest.raises(FileExistsError, match=r"removed att-w0.5"):
        check_study_folder(parse_spec(changed), folder)
    changed = yaml.safe_load(GOOD)
    changed["runs"][0]["settings"] = {"rope_theta": 100.0}
    with pytest.raises(FileExistsError, match=r"changed rope"):
        check_study_folder(parse_spec(changed), folder)


def test_a_folder_is_extended_when_the_spec_only_adds(tmp_path):
    folder = saved_folder(tmp_path, yaml.safe_load(GOOD))
    added = yaml.safe_load(GOOD)
    added["runs"].append({"variant": "alibi"})
    added["evaluations"]["tasks"].append("pos")
    added["evaluations"]["position_attention"] = {"seq_len": 16}
    notes = check_study_folder(parse_spec(added), folder)
    assert notes == [
        f"extending the study in {folder}: added runs alibi",
        f"extending the study in {folder}: added tasks pos",
        f"extending the study in {folder}: added the position_attention evaluation",
    ]


def test_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a study folder"):
        check_study_folder(parse_spec(yaml.safe_load(GOOD)), tmp_path)
    with pytest.raises(FileExistsError, match="is a file"):
        check_study_folder(parse_spec(yaml.safe_load(GOOD)), tmp_path / "notes.txt")


def test_the_cli_reports_one_line_and_trains_nothing(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(GOOD.replace("  steps: 4", "  steps: 0"))
    output = tmp_path / "study"
    assert cli.main(["study", str(path), "--output", str(output)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hf-posenc study: error: ") and "line 7" in error and error.count("\n") == 1
    assert not output.exists()
    assert cli.main(["study", "--output", str(output)]) == 2
    assert "give a spec file" in capsys.readouterr().err
    assert cli.main(["study", str(path), "--preset", "cpu-small"]) == 2


# ------------------------------------------------------------------------------------------------ hostile specs
@pytest.mark.parametrize(
    "value", ["/../../../escaped", "..", "a b", "x\ny", "..\\..\\up", "c:evil", "-" + "w" * 200]
)  # fmt: skip
def test_a_grid_value_that_is_not_a_plain_folder_name_is_refused_before_the_dry_run(tmp_path, capsys, value):
    text = GOOD.replace("      attenuation_strength: [0.05, 0.5]", f"      attenuation_form: [{json.dumps(value)}]")
    message = spec_error(tmp_path, text)
    assert "spec.yaml, line 13:" in message and repr(value) in message and "not a plain folder name" in message
    output = tmp_path / "study"
    (tmp_path / "spec.yaml").write_text(text)
    assert cli.main(["study", str(tmp_path / "spec.yaml"), "--output", str(output), "--dry_run"]) == 2
    captured = capsys.readouterr()
    assert "not a plain folder name" in captured.err and captured.out == ""  # nothing listed
    assert sorted(path.name for path in tmp_path.iterdir()) == ["spec.yaml"]  # nothing written anywhere


@pytest.mark.parametrize("old, new", [("name: bad-input", "name: ../../elsewhere"), ("  - name: att", "  - name: a/b")])
def test_a_study_or_run_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, old, new):
    assert "not a plain folder name" in spec_error(tmp_path, GOOD.replace(old, new))


def test_plain_grid_values_still_make_run_names(tmp_path):
    text = GOOD.replace("attenuation_strength: [0.05, 0.5]", "attenuation_form: [probability, learned_table]")
    (tmp_path / "spec.yaml").write_text(text)
    names = [run.name for run in load_spec(tmp_path / "spec.yaml").runs]
    assert names == ["rope", "att-attenuation_formprobability", "att-attenuation_formlearned_table"]


def billion_laughs(levels: int) -> str:
    """A spec whose every level aliases the one before nine times: 9**levels strings once expanded."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n" + GOOD


def test_a_yaml_alias_bomb_is_refused_at_once_in_small_memory(tmp_path):
    import resource
    import time

    text = billion_laughs(9)  # 9**9 = 387 million strings expanded: gigabytes, minutes
    assert len(text.encode()) < 1000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    message = spec_error(tmp_path, text)
    elapsed = time.perf_counter() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before  # Linux: KiB
    assert "line 2:" in message and "alias *l0 is not accepted" in message and "write the values out" in message
    assert elapsed < 2, elapsed
    assert grown_kib < 50_000, grown_kib


def test_a_merge_key_is_an_alias_too(tmp_path):
    text = GOOD.replace("  steps: 4", "  steps: 4\nshared: &shared {batch_size: 8}\n").replace(
        "  size: tiny", "  <<: *shared\n  size: tiny"
    )
    assert "alias *shared is not accepted" in spec_error(tmp_path, text)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_deep_nesting_is_refused_without_a_recursion_error(tmp_path, suffix):
    message = spec_error(tmp_path, "[" * 5000 + "]" * 5000, name="spec" + suffix)
    assert "nested more than 64 levels" in message

"""A micro study end to end: results, correlations, plots and report; reruns do nothing new; an added run is the
only one trained; a failing run is reported while the others finish; --dry_run plans from the folder's state."""

import csv
import itertools
import json
import math
import re

import pytest
from scipy import stats
from study_helpers import micro_spec, write_spec

from hf_posenc import cli
from hf_posenc.study import load_spec, run_study
from hf_posenc.study.report import CORRELATIONS_CSV, REPORT_FILE, RESULTS_CSV, RESULTS_JSON

# A learned table of 16 positions cannot hold 32-token blocks: a valid config that fails when training starts.
FAILING = {"name": "short-table", "variant": "learned", "settings": {"max_position_embeddings": 16}}
EVALUATIONS = {
    "tasks": [
        {"name": "sentiment", "max_train_samples": 40, "max_eval_samples": 40, "max_steps": 2, "batch_size": 8,
         "max_seq_length": 32}
    ],
    "probes": {"max_train_samples": 50, "max_eval_samples": 50, "max_steps": 2, "batch_size": 8, "max_seq_length": 32,
               "metric_sentences": 4},
    "extrapolation": {"lengths": [32, 64], "max_tokens": 2000},
    "position_attention": {"seq_len": 16},
}  # fmt: skip


def snli_sample(folder, split: str, lines: int) -> str:
    """The first `lines` pairs of the real SNLI `split` (reading all 550k train pairs per probe run is slow)."""
    from hf_posenc.data import snli_file

    path = folder / f"snli_1.0_{split}.jsonl"
    with open(snli_file(split), encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(lines), source)), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def micro_study(tmp_path_factory):
    """Run the micro study (with one failing run), run it again, then again with one run added."""
    folder = tmp_path_factory.mktemp("micro")
    EVALUATIONS["probes"]["train_file"] = snli_sample(folder, "train", 200)
    EVALUATIONS["probes"]["test_file"] = snli_sample(folder, "test", 120)
    base = micro_spec(evaluations=EVALUATIONS)
    base["runs"].append(FAILING)
    spec_path = write_spec(folder / "spec.yaml", base)
    output = folder / "study"
    first_status = cli.main(["study", spec_path, "--output", str(output)])
    first = run_study(load_spec(spec_path), output, log=lambda line: None)  # the same command again
    extended = micro_spec(evaluations=EVALUATIONS)
    extended["runs"] += [
        FAILING,
        {"name": "att-local", "variant": "attenuated", "settings": {"attenuation_strength": 1.0}},
    ]
    lines = []
    added = run_study(load_spec(write_spec(folder / "extended.yaml", extended)), output, log=lines.append)
    return {"output": output, "first_status": first_status, "rerun": first, "added": added, "added_log": lines}


def read_rows(output):
    with open(output / RESULTS_CSV, encoding="utf-8") as handle:
        return {row["run"]: row for row in csv.DictReader(handle)}


def test_results_plots_and_report_are_written(micro_study):
    output = micro_study["output"]
    assert micro_study["first_status"] == 0
    rows = read_rows(output)
    assert set(rows) == {"rope", "alibi", "att", "short-table", "att-local"}
    for name in ("rope", "alibi", "att", "att-local"):
        row = rows[name]
        assert row["status"] == "ok"
        for column in ("parameters", "tokens_per_second", "model_flops", "eval_loss", "perplexity", "locality", "symmetry",
                       "symmetry_scale_aware", "sentiment_accuracy", "probe_original", "probe_delta_role-swap",
                       "extrapolation_loss_32", "extrapolation_loss_64"):  # fmt: skip
            assert row[column] != "", (name, column)
        assert math.isclose(float(row["perplexity"]), math.exp(float(row["eval_loss"])), rel_tol=1e-9)
        assert row["mfu"] == ""  # a CPU has no peak in the table and none was given
    # position-only matrices exist for the bias route (alibi, attenuated), not for rope's rotation
    assert rows["alibi"]["position_locality"] != "" and rows["rope"].get("position_locality", "") == ""
    assert float(rows["att-local"]["position_locality"]) > float(rows["att"]["position_locality"])
    saved = json.loads((output / RESULTS_JSON).read_text())
    assert {row["run"] for row in saved["runs"]} == set(rows)
    for plot in ("scatter.png", "loss.png", "extrapolation.png", "compute.png"):
        assert (output / "plots" / plot).stat().st_size > 1000
    report = (output / REPORT_FILE).read_text()
    assert "## Summary" in report and "Lowest held-out perplexity" in report and "short-table" in report
    # Two fine-tuning steps leave the probe classifiers at chance: their scores stay in the rows, with the verdict,
    # and are left out of the correlations, which the summary says.
    assert all(rows[name]["probe_verdict"] == "not above chance" for name in ("rope", "alibi", "att", "att-local"))
    assert "- probe_delta_role-swap: not above chance in every run" in report and "cannot test the claim" in report
    probe_entries = [entry for entry in saved["correlations"] if entry["score"] == "probe_delta_role-swap"]
    assert probe_entries and all(entry["n"] == 0 and entry["spearman"] is None for entry in probe_entries)
    assert (output / CORRELATIONS_CSV).is_file()


def test_random_init_baselines_are_run_and_reported(micro_study):
    """One randomly initialised model per variant, fine-tuned like the runs; each run's task score is compared with
    its variant's baseline, and the report has the baselines' table."""
    output = micro_study["output"]
    for variant in ("rope", "alibi", "attenuated", "learned"):
        unit = output / "baselines" / f"random-init-{variant}" / "seed-1"
        assert (unit / "model" / "random_init.json").is_file(), variant
        assert (unit / "tasks" / "sentiment" / "finetune_results.json").is_file(), variant
    import torch
    from transformers import AutoModelForMaskedLM

    random = AutoModelForMaskedLM.from_pretrained(output / "baselines" / "random-init-rope" / "seed-1" / "model")
    pretrained = AutoModelForMaskedLM.from_pretrained(output / "runs" / "rope" / "seed-1" / "pretrain")
    assert random.num_parameters() == pretrained.num_parameters()  # the same size, other weights
    assert not torch.equal(random.get_input_embeddings().weight, pretrained.get_input_embeddings().weight)
    rows = read_rows(output)
    assert rows["rope"]["sentiment_accuracy_vs_random_init"] in ("above random init", "not above random init")
    saved = json.loads((output / RESULTS_JSON).read_text())
    helps = saved["random_init"]["pretraining_helps"]["sentiment_accuracy"]
    assert helps["helps"] in (True, False)
    report = (output / REPORT_FILE).read_text()
    assert "## Random-initialisation baselines" in report and "| sentiment_accuracy | random-init-rope |" in report
    if helps["helps"] is False:  # the task is then untested in every correlation, and the summary says why
        entries = [entry for entry in saved["correlations"] if entry["score"] == "sentiment_accuracy"]
        assert all(entry["n"] == 0 and entry["excluded_reason"] for entry in entries)
        assert "- sentiment_accuracy: pretraining does not help this task" in report


def test_the_scatter_shows_the_varying_pairs_and_the_report_names_the_others(micro_study):
    from hf_posenc.study.correlate import varying_pairs
    from hf_posenc.study.plots import scatter_figure

    output = micro_study["output"]
    saved = json.loads((output / RESULTS_JSON).read_text())
    pairs, left_out = saved["scatter"]["pairs"], saved["scatter"]["left_out"]
    assert len(pairs) + len(left_out) == 3 * len({entry["score"] for entry in saved["correlations"]})
    report = (output / REPORT_FILE).read_text()
    for item in left_out:
        assert f"{item['property']} vs {item['score']}" in report
    assert f"Left out of the scatter ({len(left_out)} pairs)" in report
    # the probe scores are at chance in every run: never a panel
    assert not any(score.startswith("probe_") for _, score in pairs)
    helps = saved["random_init"]["pretraining_helps"]
    excluded = {score: entry["reason"] for score, entry in helps.items() if entry["reason"]}
    again, _ = varying_pairs(saved["runs"], saved["seed_noise"], ["locality", "symmetry", "symmetry_scale_aware"],
                             [entry["score"] for entry in saved["seed_noise"][: -3]], excluded)  # fmt: skip
    assert [list(pair) for pair in again] == pairs
    if pairs:
        assert (output / "plots" / "scatter.png").stat().st_size > 1000
        assert len(scatter_figure(saved["runs"], [tuple(pair) for pair in pairs], saved["seed_noise"]).axes) == len(
            pairs
        )


def test_reported_correlations_equal_scipy_on_the_csv(micro_study):
    output = micro_study["output"]
    rows = [row for row in read_rows(output).values() if row["perplexity"] and row["locality"]]
    assert len(rows) == 4
    reported = {
        (entry["property"], entry["score"]): entry
        for entry in json.loads((output / RESULTS_JSON).read_text())["correlations"]
    }
    for prop in ("locality", "symmetry", "symmetry_scale_aware"):
        x = [float(row[prop]) for row in rows]
        y = [float(row["perplexity"]) for row in rows]
        entry = reported[(prop, "perplexity")]
        assert entry["n"] == 4
        for method, function in (("spearman", stats.spearmanr), ("pearson", stats.pearsonr)):
            observed = function(x, y).statistic
            assert entry[method] == pytest.approx(observed)
            # exact permutation p-value: the share of the 24 orderings of the runs at least as extreme
            orderings = list(itertools.permutations(range(4)))
            extreme = sum(abs(function(x, [y[i] for i in o]).statistic) >= abs(observed) - 1e-12 for o in orderings)
            assert entry[f"{method}_p"] == pytest.approx(extreme / 24)
            assert entry[f"{method}_p"] <= entry[f"{method}_p_holm"] <= 1
        assert -1 <= entry["pearson_ci_low"] <= entry["pearson_ci_high"] <= 1
        # partial correlation from the three pairwise Pearson correlations
        z = [float(row[entry["partial_control"]]) for row in rows]
        r_xy, r_xz, r_yz = (stats.pearsonr(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
        expected = (r_xy - r_xz * r_yz) / math.sqrt((1 - r_xz**2) * (1 - r_yz**2))
        assert entry["partial"] == pytest.approx(expected, abs=1e-6)


def test_a_failing_run_is_reported_and_the_others_finish(micro_study):
    output = micro_study["output"]
    row = read_rows(output)["short-table"]
    assert row["status"] == "failed"
    assert row["errors"].startswith("seed 1 pretrain: ValueError") and "16" in row["errors"]
    error = json.loads((output / "runs" / "short-table" / "seed-1" / "pretrain" / "error.json").read_text())
    assert error["step"] == "pretrain" and error["traceback"]
    assert not (output / "runs" / "short-table" / "seed-1" / "probes").exists()  # nothing to evaluate


def test_rerunning_does_nothing_new(micro_study):
    rerun = micro_study["rerun"]
    assert rerun.steps_run == [] and rerun.ran == []
    assert rerun.failed == ["short-table seed 1: pretrain"]  # recorded before, not retried


def test_adding_a_run_trains_only_that_run(micro_study):
    added = micro_study["added"]
    assert added.ran == ["att-local seed 1"]
    assert [step.split(": ")[1] for step in added.steps_run] == [
        "pretrain", "task:sentiment", "probes", "extrapolation", "position_attention"
    ]  # fmt: skip
    assert any("added runs att-local" in line for line in micro_study["added_log"])


def test_a_folder_from_before_the_baselines_is_extended_with_them(micro_study, tmp_path):
    from hf_posenc.study.layout import SPEC_FILE
    from hf_posenc.study.runner import check_study_folder

    spec = load_spec(write_spec(tmp_path / "spec.yaml", micro_spec(evaluations=EVALUATIONS)))
    older = spec.to_dict()
    del older["random_init"]
    folder = tmp_path / "older"
    folder.mkdir()
    (folder / SPEC_FILE).write_text(json.dumps(older, default=str))
    assert check_study_folder(spec, folder) == [f"extending the study in {folder}: added the random_init evaluation"]


def test_dry_run_plans_from_the_folder(micro_study, tmp_path, capsys):
    spec = micro_spec(evaluations=EVALUATIONS)
    spec["runs"] += [FAILING, {"name": "att-local", "variant": "attenuated", "settings": {"attenuation_strength": 1.0}}]
    spec["runs"].append({"variant": "nope"})
    spec_path = write_spec(tmp_path / "spec.yaml", spec)
    assert cli.main(["study", spec_path, "--output", str(micro_study["output"]), "--dry_run"]) == 0
    printed = capsys.readouterr().out
    assert "timed a training step of nope: " in printed and "(median of 5)" in printed
    assert re.search(r"machine load while timing: \d+\.\d \(1-minute average\) on \d+ cores", printed)
    # the new run and its variant's random-init baseline; the other 4 baselines were done with the study
    assert "2 of 11 (run, seed) units have steps to run" in printed
    assert re.search(r"random-init-nope +seed 1 .* to run: init, task:sentiment", printed)
    assert "failed before: pretrain" in printed
    assert "from the measured times of the 20 steps this folder has finished" in printed  # 4 units x 5 steps
    assert not (micro_study["output"] / "runs" / "nope").exists()

"""The study's statistics at the sizes people run: exact permutation p-values, Holm's correction, seed noise against
differences between runs, runs compared over the seeds they share, and ties."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from study_helpers import micro_spec

from hf_posenc.readings import EXACT_UP_TO, holm, permutation_correlation, seed_noise
from hf_posenc.study import parse_spec
from hf_posenc.study.report import (
    _best_line,
    _chance_lines,
    _combined_verdict,
    chance_exclusions,
    collect_rows,
    correlations,
    noise_table,
    shared_seeds,
)


def naive_two_sided_p(x, y, method: str) -> float:
    """The share of all orderings of y whose correlation with x is at least as far from 0 as the observed one."""
    function = stats.spearmanr if method == "spearman" else stats.pearsonr
    observed = abs(function(x, y).statistic)
    orderings = list(itertools.permutations(range(len(x))))
    extreme = sum(abs(function(x, [y[i] for i in order]).statistic) >= observed - 1e-12 for order in orderings)
    return extreme / len(orderings)


def test_the_issues_examples_at_five_runs():
    """Spearman 1 over 5 runs: 2 of the 120 orderings are as extreme (p = 0.017, where scipy's asymptotic formula
    says 1.4e-24); Spearman 0.9: 10 of 120 (p = 0.083, not significant)."""
    rho, p, exact = permutation_correlation([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    assert (rho, exact) == (1.0, True) and p == pytest.approx(2 / 120)
    assert stats.spearmanr([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]).pvalue < 1e-20
    rho, p, _ = permutation_correlation([1, 2, 3, 4, 5], [20, 10, 30, 40, 50])
    assert rho == pytest.approx(0.9) and p == pytest.approx(10 / 120)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_exact_p_values_equal_a_naive_count_over_every_ordering(method):
    rng = np.random.default_rng(3)
    for n in (3, 5, 7):
        x = rng.integers(0, 4, n).astype(float)  # ties included
        y = x + rng.normal(0, 1.5, n)
        if np.ptp(x) == 0:
            continue
        r, p, exact = permutation_correlation(x, y, method)
        assert exact
        expected = stats.spearmanr(x, y).statistic if method == "spearman" else stats.pearsonr(x, y).statistic
        assert r == pytest.approx(expected)
        assert p == pytest.approx(naive_two_sided_p(x, y, method), abs=1e-12)


def test_above_the_exact_limit_the_p_value_is_a_close_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=14)
    y = 0.5 * x + rng.normal(size=14)
    _, p, exact = permutation_correlation(x, y, "pearson")
    assert not exact
    # 14 points: Pearson's t-test p is accurate for normal data; the permutation p agrees to Monte Carlo error.
    assert p == pytest.approx(stats.pearsonr(x, y).pvalue, abs=0.01)


def test_up_to_the_limit_every_ordering_is_enumerated():
    assert permutation_correlation(range(EXACT_UP_TO), range(EXACT_UP_TO))[1:] == (
        pytest.approx(2 / math.factorial(8)),
        True,
    )


def test_constant_or_too_few_values_give_no_correlation():
    assert permutation_correlation([1, 1, 1], [1, 2, 3]) == (None, None, False)
    assert permutation_correlation([1, 2], [1, 2]) == (None, None, False)
    with pytest.raises(ValueError, match="paired"):
        permutation_correlation([1, 2, 3], [1, 2])


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04, made monotone: 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_seed_noise_against_scipy_and_by_hand():
    values = {"a": [1.0, 1.2, 1.1], "b": [1.05, 1.25], "c": [3.0, 3.1]}
    result = seed_noise(values)
    assert result["p"] == pytest.approx(stats.f_oneway(*values.values()).pvalue)
    squares = sum(sum((v - np.mean(group)) ** 2 for v in group) for group in values.values())
    assert result["within_std"] == pytest.approx(math.sqrt(squares / (7 - 3)))
    assert result["between_std"] == pytest.approx(np.std([np.mean(group) for group in values.values()], ddof=1))
    assert result["verdict"] == "differ beyond seed noise"
    close = seed_noise({"a": [1.0, 1.2], "b": [1.05, 1.25]})
    assert close["verdict"] == "within seed noise"
    assert seed_noise({"a": [1.0], "b": [2.0]})["verdict"] == "seed noise unknown"


def units_of(perplexities: dict[str, dict[int, float]]):
    """Synthetic (run -> seed -> (values, errors)) of finished pretrainings with the given perplexities."""
    return {
        run: {seed: ({"eval_loss": math.log(value), "perplexity": value}, []) for seed, value in by_seed.items()}
        for run, by_seed in perplexities.items()
    }


def spec_with(runs: dict[str, list[int]]):
    return parse_spec(
        micro_spec(runs=[{"name": name, "variant": "rope", "seeds": seeds} for name, seeds in runs.items()])
    )


def test_a_run_with_fewer_seeds_is_compared_on_the_seeds_it_shares():
    """The issue's case: a run with only seed 1 added to a study of seeds 1 and 2. Averaged over their own seeds it
    looked best; over the shared seed 1 it is the worst, as it should be."""
    perplexities = {"a": {1: 700.0, 2: 600.0}, "b": {1: 710.0, 2: 610.0}, "late": {1: 720.0}}
    units = units_of(perplexities)
    assert shared_seeds(units) == [1]
    rows = {row["run"]: row for row in collect_rows(spec_with({"a": [1, 2], "b": [1, 2], "late": [1]}), "/", units)}
    assert {name: row["perplexity"] for name, row in rows.items()} == {"a": 700.0, "b": 710.0, "late": 720.0}
    assert rows["a"]["seeds_compared"] == "1" and rows["a"]["seeds_done"] == 2
    ranked = [row for row in rows.values()]
    assert _best_line("Lowest", ranked, "perplexity", {}, lowest=True) == "- Lowest: a (700)."


def test_pending_runs_do_not_shrink_the_shared_seeds_and_disjoint_seeds_share_none():
    assert shared_seeds(units_of({"a": {1: 1.0, 2: 2.0}, "b": {1: 1.0, 2: 2.0}, "new": {}})) == [1, 2]
    assert shared_seeds(units_of({"a": {1: 1.0}, "b": {2: 1.0}})) == []


def test_ties_and_noise_are_named_in_the_best_line():
    rows = [{"run": "x", "score": 0.7}, {"run": "y", "score": 0.7}, {"run": "z", "score": 0.6}]
    assert _best_line("Best", rows, "score", {}) == "- Best: x and y (0.7) tie."
    rows = [{"run": "x", "score": 0.71, "score_std": 0.05}, {"run": "z", "score": 0.7, "score_std": 0.04}]
    line = _best_line("Best", rows, "score", {"score": {"verdict": "within seed noise"}})
    assert line.startswith("- Best: x (0.71 ± 0.05).") and "cannot be told apart from seed noise" in line


def test_noise_table_uses_the_shared_seeds():
    units = units_of({"a": {1: 700.0, 2: 702.0, 3: 900.0}, "b": {1: 701.0, 2: 703.0}})
    (entry,) = noise_table(units, ["perplexity"])
    assert entry["runs"] == 2 and entry["verdict"] == "within seed noise"
    assert entry["within_std"] == pytest.approx(math.sqrt(2.0))  # seeds 1 and 2 only; seed 3 of 'a' is left out


def test_majority_label_and_the_chance_verdict():
    from hf_posenc.readings import ABOVE_CHANCE, NOT_ABOVE_CHANCE, chance_verdict, majority_label

    assert majority_label(["fresh", "rotten", "fresh"]) == "fresh"
    assert majority_label([0, 1]) == 0  # a tie: the first seen
    with pytest.raises(ValueError, match="at least one label"):
        majority_label([])
    # The demo's 59.1% sentiment accuracy is the majority share of its 1,000 test snippets: not above chance.
    at_chance = chance_verdict(0.591, 0.591, n=1000)
    assert at_chance["verdict"] == NOT_ABOVE_CHANCE and at_chance["noise_from"] == "binomial"
    assert at_chance["noise"] == pytest.approx(math.sqrt(0.591 * 0.409 / 1000))
    # bigram_shift at 0.612 against a 0.54 majority on 1,000 examples: about 4.6 standard errors above.
    assert chance_verdict(0.612, 0.54, n=1000)["verdict"] == ABOVE_CHANCE
    # With seeds, their spread is the noise: 0.03 above chance with a seed std of 0.02 is not enough.
    assert chance_verdict(0.62, 0.59, seed_std=0.02, n=1000)["verdict"] == NOT_ABOVE_CHANCE
    assert chance_verdict(None, 0.5, n=10)["verdict"] == "unknown"
    assert chance_verdict(0.7, 0.0)["verdict"] == "unknown"  # MCC-like chance of 0 and no noise estimate


def test_values_not_above_chance_are_left_out_of_the_correlations():
    """Five runs; run e's probe model stayed at chance, so its probe scores (its row keeps them) are no evidence, and
    no run's sst2 beats chance, so that score cannot test the claim."""
    rows = [
        {"run": run, "locality": loc, "probe_original": acc, "probe_delta_role-swap": delta, "probe_verdict": "above chance",
         "sst2_accuracy": 0.5 + loc / 100, "sst2_accuracy_verdict": "not above chance"}
        for run, loc, acc, delta in (("a", 1, 0.6, -5), ("b", 2, 0.65, -6), ("c", 3, 0.7, -7), ("d", 4, 0.75, -8),
                                     ("e", 5, 0.34, 30))
    ]  # fmt: skip
    rows[4]["probe_verdict"] = "not above chance"
    scores = ["probe_original", "probe_delta_role-swap", "sst2_accuracy"]
    excluded = chance_exclusions(rows, scores)
    assert [(item["run"], item["score"]) for item in excluded] == [
        ("e", "probe_original"),
        ("e", "probe_delta_role-swap"),
        *[(run, "sst2_accuracy") for run in "abcde"],
    ]
    table = {entry["score"]: entry for entry in correlations(rows, ["locality"], scores, bootstrap=0)}
    # Without e the probe scores are perfectly monotone in locality; with it they would not be.
    assert table["probe_original"]["n"] == 4 and table["probe_original"]["spearman"] == pytest.approx(1.0)
    assert table["probe_delta_role-swap"]["spearman"] == pytest.approx(-1.0)
    assert table["probe_original"]["excluded_at_chance"] == "e"
    assert table["sst2_accuracy"]["n"] == 0 and table["sst2_accuracy"]["spearman"] is None
    assert rows[4]["probe_original"] == 0.34  # the raw value stays in the row
    lines = _chance_lines(rows, scores)
    assert any(line.startswith("- probe_original: not above chance in e: left out") for line in lines)
    assert any("sst2_accuracy: not above chance in every run" in line and "cannot test the claim" in line
               for line in lines)  # fmt: skip
    # An unknown verdict (results from before chance levels) keeps the value.
    rows[4]["probe_verdict"] = "unknown"
    assert correlations(rows, ["locality"], ["probe_original"], bootstrap=0)[0]["n"] == 5


def test_verdicts_over_seeds():
    assert _combined_verdict(["above chance", "not above chance"]) == "not above chance"
    assert _combined_verdict(["above chance", "above chance"]) == "above chance"
    assert _combined_verdict(["above chance", None]) == "unknown"
    assert _combined_verdict([None, None]) is None


# ------------------------------------------------------------------------------------------------ honest readings
def test_a_value_not_above_chance_is_never_ranked_best():
    rows = [
        {"run": "a", "acc": 0.80, "acc_verdict": "not above chance"},
        {"run": "b", "acc": 0.70, "acc_verdict": "above chance"},
        {"run": "c", "acc": 0.65, "acc_verdict": "above chance"},
    ]
    line = _best_line("Best", rows, "acc", {})
    assert line.startswith("- Best: b (0.7).") and "Not ranked, not above chance: a." in line
    for row in rows:
        row["acc_verdict"] = "not above chance"
    assert _best_line("Best", rows, "acc", {}) == "- Best: no run is above chance (3 are not), so none is ranked."


def test_runs_within_seed_noise_of_the_best_are_named_as_tied():
    rows = [{"run": "a", "score": 0.70}, {"run": "b", "score": 0.69}, {"run": "c", "score": 0.50}]
    # pooled seed std 0.01 over 2 seeds: a difference of two means has noise 0.01; 0.01 apart is within 2 x that
    noise = {"score": {"verdict": "differ beyond seed noise", "within_std": 0.01, "seeds": 2}}
    line = _best_line("Best", rows, "score", noise)
    assert line.startswith("- Best: a (0.7). Tied within seed noise with b (less than 2 x 0.01")


def _write_unit(folder, **pretrain):
    from hf_posenc.results import PretrainResult

    values = {"variant": "rope", "max_seq_length": 32, "train_steps": 4, "train_loss": 6.0, "eval_loss": 6.0,
              "perplexity": math.exp(6.0), "dataset": "stdlib", "tokenizer": "WordPiece", "locality": 0.3,
              "symmetry": 0.7, "symmetry_scale_aware": 0.6, **pretrain}  # fmt: skip
    (folder / "pretrain").mkdir(parents=True)
    PretrainResult(**values).save(folder / "pretrain")


def test_out_of_range_values_are_refused_with_the_file_and_field(tmp_path):
    from hf_posenc.results import FinetuneResult
    from hf_posenc.study.layout import unit_folder

    spec = parse_spec(micro_spec(evaluations={"tasks": ["sentiment"]}))
    _write_unit(unit_folder(tmp_path, "rope", 1), locality=5.0)
    _write_unit(unit_folder(tmp_path, "alibi", 1), perplexity=0.5)
    _write_unit(unit_folder(tmp_path, "att", 1))
    task_folder = unit_folder(tmp_path, "att", 1) / "tasks" / "sentiment"
    task_folder.mkdir(parents=True)
    FinetuneResult(model="m", model_type="posenc_rope", tasks={"sentiment": {"report": {"accuracy": {"mean": 81.0}}}},
                   complete=True).save(task_folder)  # fmt: skip
    rows = {row["run"]: row for row in collect_rows(spec, tmp_path)}
    assert rows["rope"].get("locality") is None and rows["rope"]["status"] == "failed"
    assert "posenc_results.json: locality = 5.0 is outside [0, 1]" in rows["rope"]["errors"]
    assert "perplexity = 0.5 is outside [1, inf]" in rows["alibi"]["errors"]
    assert (
        "finetune_results.json: tasks['sentiment']['report']['accuracy']['mean'] = 81.0 is outside [0, 1]"
        in (rows["att"]["errors"])
    )
    assert rows["att"]["locality"] == 0.3 and rows["att"].get("sentiment_accuracy") is None
    # a refused value reaches no correlation
    assert correlations(list(rows.values()), ["locality"], ["perplexity"], bootstrap=0)[0]["n"] == 1


def test_a_damaged_result_file_is_reported_not_a_crash(tmp_path):
    from hf_posenc.study.layout import unit_folder

    spec = parse_spec(micro_spec())
    folder = unit_folder(tmp_path, "rope", 1) / "pretrain"
    folder.mkdir(parents=True)
    (folder / "posenc_results.json").write_text("{not json")
    (row,) = [row for row in collect_rows(spec, tmp_path) if row["run"] == "rope"]
    assert "is not valid JSON" in row["errors"] and row["status"] == "failed"


def test_the_random_init_verdict_by_hand():
    from hf_posenc.readings import baseline_verdict

    # 0.612 against 0.54 on 1,000 examples each: noise sqrt((0.612*0.388 + 0.54*0.46)/1000) = 0.0222, margin 3.2x
    reading = baseline_verdict(0.612, 0.54, n=1000)
    assert reading["noise"] == pytest.approx(math.sqrt((0.612 * 0.388 + 0.54 * 0.46) / 1000))
    assert reading["verdict"] == "above random init" and reading["noise_from"] == "binomial"
    # sentiment: pretrained 0.72 against a random init at 0.733: pretraining did not help
    assert baseline_verdict(0.72, 0.733, n=1000)["verdict"] == "not above random init"
    # with seeds on both sides their standard deviations make the noise
    seeded = baseline_verdict(0.74, 0.70, score_std=0.02, baseline_std=0.015)
    assert seeded["noise"] == pytest.approx(0.025) and seeded["verdict"] == "not above random init"
    assert baseline_verdict(None, 0.5, n=10)["verdict"] == "unknown"


def test_a_task_pretraining_does_not_help_is_left_out_of_the_correlations():
    from hf_posenc.study.baselines import compare_with_baselines

    rows = [
        {"run": run, "variant": "rope", "locality": loc, "perplexity": 700 - 10 * loc, "sentiment_accuracy": acc,
         "bigram_shift_accuracy": 0.5 + loc / 30}
        for run, loc, acc in (("a", 1, 0.70), ("b", 2, 0.71), ("c", 3, 0.72), ("d", 4, 0.73))
    ]  # fmt: skip
    baselines = {"rope": {"sentiment_accuracy": {"mean": 0.733, "std": None, "n": 1000},
                          "bigram_shift_accuracy": {"mean": 0.54, "std": None, "n": 1000}}}  # fmt: skip
    helped = compare_with_baselines(rows, baselines, ["sentiment_accuracy", "bigram_shift_accuracy"])
    assert helped["sentiment_accuracy"]["helps"] is False and "does not help" in helped["sentiment_accuracy"]["reason"]
    assert helped["bigram_shift_accuracy"]["helps"] is True and helped["bigram_shift_accuracy"]["above"] == ["c", "d"]
    assert rows[0]["sentiment_accuracy_vs_random_init"] == "not above random init"
    assert rows[0]["sentiment_accuracy_random_init"] == 0.733
    excluded = {"sentiment_accuracy": helped["sentiment_accuracy"]["reason"]}
    scores = ["perplexity", "sentiment_accuracy", "bigram_shift_accuracy"]
    table = {e["score"]: e for e in correlations(rows, ["locality"], scores, bootstrap=0, excluded_scores=excluded)}
    assert table["sentiment_accuracy"]["n"] == 0 and table["sentiment_accuracy"]["spearman_p_holm"] is None
    assert table["sentiment_accuracy"]["excluded_reason"].startswith("pretraining does not help")
    # Holm's family is the two tests that ran: each exact p (2/24) times at most 2
    assert table["perplexity"]["spearman_p_holm"] == pytest.approx(2 * 2 / 24)


def test_only_pairs_that_vary_beyond_noise_are_plotted_and_the_rest_are_named():
    from hf_posenc.study.correlate import varying_pairs
    from hf_posenc.study.plots import WIDENED, scatter_figure

    rows = [
        {"run": run, "locality": loc, "symmetry": 0.7, "perplexity": ppl, "acc": acc, "acc_verdict": verdict,
         "locality_std": 0.01, "perplexity_std": 2.0}
        for run, loc, ppl, acc, verdict in (("a", 0.1, 700.0, 0.6, "above chance"), ("b", 0.2, 700.5, 0.7, "above chance"),
                                            ("c", 0.3, 701.0, 0.8, "above chance"), ("d", 0.4, 702.0, 0.3, "not above chance"))
    ]  # fmt: skip
    noise = [
        {"score": "perplexity", "verdict": "differ beyond seed noise", "within_std": 3.0, "seeds": 2},
        {"score": "locality", "verdict": "differ beyond seed noise", "within_std": 0.001, "seeds": 2},
    ]
    pairs, left_out = varying_pairs(rows, noise, ["locality", "symmetry"], ["perplexity", "acc"])
    assert pairs == [("locality", "perplexity"), ("locality", "acc")]
    assert {(item["property"], item["score"]) for item in left_out} == {("symmetry", "perplexity"), ("symmetry", "acc")}
    assert all("every run has the same value (0.7)" in item["reason"] for item in left_out)
    noise[0]["verdict"] = "within seed noise"
    noise[0].update(between_std=0.9, p=0.6)
    pairs, left_out = varying_pairs(rows, noise, ["locality"], ["perplexity", "acc"])
    assert pairs == [("locality", "acc")] and "within seed noise" in left_out[0]["reason"]
    # one run apart from a shared value (the CPU study's bigram_shift: 16 of 17 runs at 0.467) is no variation
    stuck = [{**row, "acc": 0.467 if row["run"] != "a" else 0.597} for row in rows]
    _, left_out = varying_pairs(stuck, noise, ["locality"], ["acc"])
    assert "2 of 3 runs have the same value (0.467), so a panel would rest on the other 1" in left_out[0]["reason"]
    figure = scatter_figure(rows, [("locality", "perplexity"), ("locality", "acc")], noise)
    assert len(figure.axes) == 2
    perplexity_panel, accuracy_panel = figure.axes
    # perplexity spreads 2 against a seed noise of 3: the axis spans +-2 noise and says so
    assert perplexity_panel.get_ylim() == pytest.approx((701 - 6, 701 + 6)) and WIDENED in perplexity_panel.get_ylabel()
    assert accuracy_panel.get_xlabel().startswith("locality") and "seed noise unknown" in accuracy_panel.get_ylabel()
    faces = [line.get_markerfacecolor() for line in accuracy_panel.lines if line.get_marker() == "o"]
    assert faces.count("none") == 1  # run d, not above chance, is hollow
    assert accuracy_panel.xaxis.label.get_fontsize() >= 10 and accuracy_panel.texts[0].get_fontsize() >= 8


def test_the_random_init_section_of_a_spec():
    tasks = {"tasks": ["sentiment"]}
    assert parse_spec(micro_spec(evaluations=tasks)).random_init.variants is None  # on by default: every variant
    assert parse_spec(micro_spec()).random_init is None  # no tasks, nothing to compare
    assert parse_spec(micro_spec(evaluations={**tasks, "random_init": False})).random_init is None
    chosen = parse_spec(micro_spec(evaluations={**tasks, "random_init": {"variants": ["rope"]}}))
    assert chosen.random_init.variants == ["rope"]
    from hf_posenc.study import SpecError

    with pytest.raises(SpecError, match="random_init variant 'nope' has no run in this study"):
        parse_spec(micro_spec(evaluations={**tasks, "random_init": {"variants": ["nope"]}}))
    with pytest.raises(SpecError, match="has none"):
        parse_spec(micro_spec(evaluations={"random_init": True}))
    with pytest.raises(SpecError, match="did you mean 'variants'"):
        parse_spec(micro_spec(evaluations={**tasks, "random_init": {"variant": ["rope"]}}))

"""The spec's grids, budgets and presets, and the pretraining arguments a run gets (in process and as the flags of
`accelerate launch -m hf_posenc.study.pretrain_job`)."""

import dataclasses

import pytest
from study_helpers import micro_spec

from hf_posenc.study import EXAMPLE_SPEC, PRESETS, parse_spec, preset_spec, spec_from_text
from hf_posenc.study.runner import _as_flags, pretrain_options
from hf_posenc.training import parse_pretrain_arguments, pretrain_arguments


def test_grids_expand_into_named_runs_with_their_settings():
    spec = spec_from_text(EXAMPLE_SPEC)
    grid = [run for run in spec.runs if run.group == "att"]
    assert [run.name for run in grid] == ["att-w0.05-s0.5", "att-w0.05-s2", "att-w0.5-s0.5", "att-w0.5-s2"]
    assert grid[1].settings == {"attenuation_learnable": False, "attenuation_strength": 0.05, "attenuation_symmetry": 2}
    assert grid[1].grid == {"attenuation_strength": 0.05, "attenuation_symmetry": 2}
    assert spec.tasks[0].learning_rates == [0.0001] and spec.probes.max_eval_samples == 200


def test_a_token_budget_becomes_whole_steps():
    values = micro_spec()
    values["pretraining"] = {**values["pretraining"], "steps": None, "tokens": 1000}
    del values["pretraining"]["steps"]
    spec = parse_spec(values)
    assert spec.pretraining.tokens_per_step == 8 * 32
    assert spec.pretraining.max_steps == 4  # ceil(1000 / 256)


def test_yaml_reads_exponents_as_numbers():
    text = EXAMPLE_SPEC.replace("learning_rates: [0.0001]", "learning_rates: [1e-4, 3e-4]")
    assert spec_from_text(text).tasks[0].learning_rates == [1e-4, 3e-4]


@pytest.mark.parametrize("name", ["cpu-full", "gpu-base"])
def test_full_presets_hold_every_variant_and_an_attenuated_grid(name):
    import hf_posenc

    spec = preset_spec(name)
    assert {run.variant for run in spec.runs} == set(hf_posenc.VARIANTS)
    assert sum(run.group == "att" for run in spec.runs) == 4
    assert all(run.seeds == [1, 2, 3] for run in spec.runs)


def test_the_small_cpu_preset_spans_the_properties_with_two_seeds_and_a_task_that_needs_pretraining():
    spec = preset_spec("cpu-small")
    assert [run.name for run in spec.runs] == ["nope", "learned", "rope", "alibi", "att-w0.02", "att-w0.2"]
    assert all(run.seeds == [1, 2] for run in spec.runs) and spec.random_init is not None
    # The budget at which bigram_shift was measured to leave chance (docs/study.md): not less.
    assert spec.pretraining.max_steps >= 3000 and [task.name for task in spec.tasks] == ["bigram_shift"]
    assert set(PRESETS) == {"cpu-small", "cpu-full", "gpu-base"}


def test_the_accelerate_flags_give_the_same_arguments_as_in_process(tmp_path):
    values = micro_spec(
        runs=[{"variant": "attenuated", "settings": {"attenuation_strength": 0.3, "attenuation_learnable": True,
                                                     "pre_layer_norm": True}}]
    )  # fmt: skip
    values["pretraining"]["training"] = {"weight_decay": 0.02}
    spec = parse_spec(values)
    options = pretrain_options(spec, spec.runs[0], 7, tmp_path / "tokenizer", tmp_path / "out")
    assert options["config_overrides"] == "hidden_size=32,intermediate_size=64,pre_layer_norm=true"
    in_process = pretrain_arguments(**options)
    from_flags = parse_pretrain_arguments(_as_flags(options))
    for key in in_process:
        if key == "training_args":
            for name in ("max_steps", "seed", "learning_rate", "weight_decay", "output_dir", "logging_steps"):
                assert getattr(from_flags[key], name) == getattr(in_process[key], name), name
        else:
            flags, direct = dataclasses.asdict(from_flags[key]), dataclasses.asdict(in_process[key])
            if key == "variant_args":  # a flag of a per-head parameter is a list of one value
                direct = {name: [value] if isinstance(value, float) else value for name, value in direct.items()}
            assert flags == direct, key

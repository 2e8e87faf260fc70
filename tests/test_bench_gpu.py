"""benchmarks/bench_gpu.py on a CPU with tiny flags: the table and JSON it writes, and the FLOP counts behind the MFU
of its transformers baselines, against the matrix products torch counts."""

import json
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_gpu  # noqa: E402

TINY_FLAGS = ["--size", "tiny", "--seq_lengths", "16", "--steps", "2", "--device", "cpu", "--batch_size", "2"]


def test_the_smoke_run_prints_a_table_and_writes_json(tmp_path, capsys):
    output = tmp_path / "gpu.json"
    flags = [*TINY_FLAGS, "--seq_lengths", "8", "16", "--variants", "learned", "deberta", "--peak_tflops", "0.01"]
    result = bench_gpu.main([*flags, "--output", str(output)])
    assert json.loads(output.read_text()) == json.loads(json.dumps(result))
    rows = result["rows"]
    assert [(row["model"], row["seq_len"]) for row in rows] == [
        (model, length)
        for length in (8, 16)
        for model in ("BertForMaskedLM", "ModernBertForMaskedLM", "learned", "deberta")
    ]
    for row in rows:
        assert row["tokens_per_s"] > 0 and row["memory_MiB"] > 0
        achieved = row["tokens_per_s"] * row["gflops_per_token"] * 1e9
        assert row["mfu"] == pytest.approx(achieved / 0.01e12, rel=1e-12)
        bert = next(
            other for other in rows if (other["model"], other["seq_len"]) == ("BertForMaskedLM", row["seq_len"])
        )
        assert row["x_Bert"] == pytest.approx(row["tokens_per_s"] / bert["tokens_per_s"], rel=1e-12)
    table = capsys.readouterr().out
    assert "| deberta" in table and "CPU" in table and "peak 0.01 TFLOP/s" in table
    # On a CPU with autograd on every variant keeps its default kernel; the baselines run their config's SDPA.
    assert {(row["model"], row["kernel"]) for row in rows} == {
        ("BertForMaskedLM", "sdpa"),
        ("ModernBertForMaskedLM", "sdpa"),
        ("learned", "sdpa"),
        ("deberta", "eager"),
    }
    assert "attention dropout 0.0" in table and result["settings"]["attention_dropout"] == 0.0


def test_on_cuda_the_attention_dropout_decides_the_kernel_of_the_bias_and_score_variants():
    """The choice is a pure function of the model and the device name, so it is checked here for CUDA."""
    for dropout, expected in ((0.0, "flex_attention"), (0.1, "sdpa")):
        args = bench_gpu.parse_args([*TINY_FLAGS, "--hidden_size", "64", "--attention_dropout", str(dropout)])
        models = {name: bench_gpu.build(name, args, 16)[0] for name in ("alibi", "shaw", "rope", "BertForMaskedLM")}
        assert bench_gpu.attention_kernel(models["alibi"], "cuda") == expected
        assert bench_gpu.attention_kernel(models["shaw"], "cuda") == ("flex_attention" if dropout == 0 else "eager")
        assert bench_gpu.attention_kernel(models["rope"], "cuda") == "sdpa"
        assert models["BertForMaskedLM"].config.attention_probs_dropout_prob == dropout


def test_without_a_peak_on_a_cpu_there_is_no_mfu(tmp_path):
    result = bench_gpu.main([*TINY_FLAGS, "--variants", "rope", "--no_baselines", "--output", str(tmp_path / "j.json")])
    (row,) = result["rows"]
    assert row["mfu"] is None and result["peak_tflops"] is None and row["x_Bert"] is None


@pytest.mark.parametrize("name", ["BertForMaskedLM", "ModernBertForMaskedLM", "alibi"])
def test_the_models_flops_are_their_matrix_products(name):
    args = bench_gpu.parse_args([*TINY_FLAGS, "--vocab_size", "200", "--mask_fraction", "0.25", "--dtype", "float32"])
    model, flops_per_token = bench_gpu.build(name, args, 16)
    ids = torch.randint(5, 200, (2, 16))
    labels = torch.full_like(ids, -100)
    labels[:, ::4] = ids[:, ::4]  # a quarter of the tokens masked, as --mask_fraction says
    model.set_attn_implementation("eager")  # the CPU's fused attention kernel is not in torch's FLOP table
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
    # ModernBERT's rotary table adds a [d/2] x [T] product per forward: a few hundred FLOPs
    assert counter.get_total_flops() == pytest.approx(flops_per_token * 32, rel=1e-3)


def test_bad_flags_exit_with_a_message(capsys):
    for flags in (["--variants", "nosuch"], ["--steps", "0"], ["--peak_tflops", "-1"]):
        with pytest.raises(SystemExit):
            bench_gpu.parse_args(flags)
    assert "unknown variant(s) nosuch" in capsys.readouterr().err

"""Throughput and MFU in the training logs: the FLOPs formula against a hand count and against the matrix products
torch counts, and the callback run for real with Trainer (log_history, TensorBoard) and through `pretrain`."""

import json

import pytest
import torch
from conftest import ALL, random_ids, tensorboard_tags, tiny_config, tiny_mlm
from datasets import Dataset
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForMaskedLM, Trainer, TrainingArguments

from hf_posenc.study.pretrain_job import TrainingLogCallback
from hf_posenc.training import parse_pretrain_arguments
from hf_posenc.training.throughput import (
    MFU,
    TOKENS_PER_SECOND,
    ThroughputCallback,
    device_peak_tflops,
    model_flops_per_token,
    peak_tflops_for_device_name,
)

SEQ_LEN = 16


def test_flops_per_token_by_hand_for_the_tiny_config():
    config = tiny_config("learned")  # D = 32, L = 2, I = 64, V = 120
    # 6 x [L (4 D^2 + 2 D I) + p (D^2 + D V)] + 12 L D T, with p = 0.15 and T = 16:
    # layers 2 x (4 x 1024 + 2 x 32 x 64) = 16,384; head 0.15 x (1024 + 3840) = 729.6; attention 12 x 2 x 32 x 16
    assert model_flops_per_token(config, SEQ_LEN, 0.15) == pytest.approx(6 * (16_384 + 729.6) + 12_288)
    assert model_flops_per_token(config, 32, 0.15) - model_flops_per_token(config, 16, 0.15) == 12 * 2 * 32 * 16


def counted_step_flops(model, ids, labels) -> int:
    """The FLOPs of the matrix products torch runs in one forward and backward (eager attention: the CPU's fused
    attention kernel is not in torch's FLOP table)."""
    model.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter:
        model(ids, labels=labels).loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("variant", ALL)
def test_the_formula_counts_the_backbone_every_variant_computes(variant):
    """Exact for encodings whose own work is elementwise; the encodings with extra matrix products (the score route,
    fire's network, the forget gate) compute more than the shared numerator, never less."""
    ids = random_ids(2, SEQ_LEN)
    labels = torch.full_like(ids, -100)
    labels[0, :5], labels[1, 3:11] = ids[0, :5], ids[1, 3:11]  # 13 of the 32 tokens reach the head
    counted = counted_step_flops(tiny_mlm(variant), ids, labels)
    formula = model_flops_per_token(tiny_config(variant), SEQ_LEN, 13 / 32) * 32
    if variant in ("nope", "learned", "sinusoidal", "rope", "alibi", "t5", "kerple", "attenuated"):
        assert counted == pytest.approx(formula, rel=1e-12)
    else:
        assert counted >= formula * (1 - 1e-12)


def test_peaks_come_from_the_table_or_not_at_all():
    assert peak_tflops_for_device_name("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops_for_device_name("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops_for_device_name("NVIDIA H200") == 989.0
    assert peak_tflops_for_device_name("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops_for_device_name("NVIDIA L4") == 121.0
    assert peak_tflops_for_device_name("NVIDIA L40S") == 362.05
    for unknown in ("NVIDIA H100 NVL", "NVIDIA H200 NVL", "NVIDIA A10G", "NVIDIA GeForce RTX 4090", "Tesla V100"):
        assert peak_tflops_for_device_name(unknown) is None, unknown
    assert device_peak_tflops("cpu") is None


def test_a_bad_peak_is_a_one_line_error():
    for bad in ("0", "-5", "nan"):
        with pytest.raises(ValueError, match="--peak_tflops must be a positive number"):
            parse_pretrain_arguments(["--peak_tflops", bad])


def train_tiny(tmp_path, steps: int = 4, **callback_options):
    """Trainer on a tiny learned-position model and random 16-token blocks, logging every 2 steps to TensorBoard,
    with the throughput callback and the study's training log."""
    model = AutoModelForMaskedLM.from_config(tiny_config("learned"))
    ids = random_ids(32, SEQ_LEN)
    labels = torch.where(torch.rand(ids.shape) < 0.15, ids, -100)
    dataset = Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist()})
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=steps,
        per_device_train_batch_size=4,
        logging_steps=2,
        report_to=["tensorboard"],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    callback = ThroughputCallback.install(trainer, seq_len=SEQ_LEN, mlm_probability=0.15, **callback_options)
    study_log = TrainingLogCallback(
        tmp_path / "training_log.json", 4 * SEQ_LEN, seq_len=SEQ_LEN, mlm_probability=0.15, **callback_options
    )
    trainer.add_callback(study_log)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if TOKENS_PER_SECOND in entry]
    return trainer, callback, logged, json.loads((tmp_path / "training_log.json").read_text())


def test_tokens_per_second_reach_log_history_and_tensorboard_and_mfu_is_absent_on_a_cpu(tmp_path):
    trainer, callback, logged, study_log = train_tiny(tmp_path)
    assert [entry["step"] for entry in logged] == [2, 4]
    assert all(entry[TOKENS_PER_SECOND] > 0 for entry in logged)
    assert not any(MFU in entry for entry in trainer.state.log_history)
    assert callback.flops_per_token == model_flops_per_token(trainer.model.config, SEQ_LEN, 0.15)
    assert callback.tokens_per_step == 4 * SEQ_LEN
    assert [entry["step"] for entry in trainer.state.log_history if "loss" in entry] == [2, 4]  # the loss log stays
    tags = tensorboard_tags(tmp_path / "run")
    assert tags[f"train/{TOKENS_PER_SECOND}"] == [2, 4]
    assert f"train/{MFU}" not in tags
    # the study's record: the run's compute, and no MFU without a peak
    assert study_log["model_flops"] == pytest.approx(4 * 4 * SEQ_LEN * callback.flops_per_token)
    assert study_log["model_flops_per_token"] == callback.flops_per_token
    assert study_log["mfu"] is None and study_log["peak_tflops"] is None and study_log["tokens_per_second"] > 0


def test_with_a_peak_mfu_is_achieved_over_peak(tmp_path):
    trainer, callback, logged, study_log = train_tiny(tmp_path, peak_tflops=0.002)
    assert [entry["step"] for entry in logged] == [2, 4]
    for entry in logged:
        achieved = entry[TOKENS_PER_SECOND] * callback.flops_per_token
        assert entry[MFU] == pytest.approx(achieved / 0.002e12, rel=1e-12)
    assert f"train/{MFU}" in tensorboard_tags(tmp_path / "run")
    achieved = study_log["tokens_per_second"] * study_log["model_flops_per_token"]
    assert study_log["peak_tflops"] == 0.002
    assert study_log["mfu"] == pytest.approx(achieved / 0.002e12, rel=1e-12)


def test_the_callback_must_be_installed_with_its_trainer(tmp_path):
    model = tiny_mlm("learned")
    dataset = Dataset.from_dict({"input_ids": random_ids(4, SEQ_LEN).tolist()})
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to=[], use_cpu=True, save_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    trainer.add_callback(ThroughputCallback(seq_len=SEQ_LEN, mlm_probability=0.15))
    with pytest.raises(RuntimeError, match="ThroughputCallback.install"):
        trainer.train()


def test_pretraining_logs_throughput_and_mfu(tmp_path):
    from test_pretrain import TINY_RUN, run_pretrain

    output = tmp_path / "run"
    run = [*TINY_RUN, "--max_steps", "4", "--eval_steps", "4", "--save_steps", "4", "--posenc_metrics", "false"]
    run_pretrain(["--variant", "rope", "--output_dir", str(output), "--peak_tflops", "0.5", *run])
    state = json.loads((output / "checkpoint-4" / "trainer_state.json").read_text())
    logged = [entry for entry in state["log_history"] if TOKENS_PER_SECOND in entry]
    assert [entry["step"] for entry in logged] == [4]
    config = json.loads((output / "config.json").read_text())
    flops = 6 * (2 * (4 * 32**2 + 2 * 32 * 64) + 0.15 * (32**2 + 32 * config["vocab_size"])) + 12 * 2 * 32 * 32
    assert logged[0][MFU] == pytest.approx(logged[0][TOKENS_PER_SECOND] * flops / 0.5e12, rel=1e-9)
    assert f"train/{TOKENS_PER_SECOND}" in tensorboard_tags(output)

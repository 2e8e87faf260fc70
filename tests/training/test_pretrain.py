"""hf_posenc.training.pretrain and the LocalitySymmetryCallback, run for real: Trainer, accelerate, TensorBoard.

Runs call `pretrain()` in this process; two tests start real processes because that is what they prove:
`accelerate launch` of examples/pretrain.py with 2 CPU processes, and the script's one-line error with status 2.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch
from conftest import tensorboard_tags
from transformers import BertConfig, BertForMaskedLM, Trainer, TrainerCallback, TrainingArguments

from hf_posenc import data
from hf_posenc.callbacks import LocalitySymmetryCallback, probe_batch_from_dataset
from hf_posenc.metrics import summarize_model
from hf_posenc.results import PretrainResult
from hf_posenc.storage import cache_dir
from hf_posenc.training import parse_pretrain_arguments, pretrain

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "pretrain.py"
TINY_RUN = [
    "--corpus",
    "stdlib",
    "--vocab_size",
    "1000",
    "--max_seq_length",
    "32",
    "--config_overrides",
    "hidden_size=32,num_hidden_layers=2,num_attention_heads=4,intermediate_size=64",
    "--per_device_train_batch_size",
    "8",
    "--per_device_eval_batch_size",
    "8",
    "--max_steps",
    "12",
    "--logging_steps",
    "4",
    "--eval_steps",
    "6",
    "--save_steps",
    "6",
    "--warmup_steps",
    "0",
    "--posenc_probe_sequences",
    "4",
    "--disable_tqdm",
    "true",
    "--dataloader_pin_memory",
    "false",
]


def run_pretrain(argv: list[str], callbacks=()) -> PretrainResult:
    """What `python examples/pretrain.py ARGV` does, in this process."""
    return pretrain(**parse_pretrain_arguments(argv), callbacks=callbacks)


def test_run_logs_metrics_to_tensorboard_and_saves_safetensors(tmp_path):
    output = tmp_path / "run"
    returned = run_pretrain(["--variant", "alibi", "--output_dir", str(output), *TINY_RUN])
    tags = tensorboard_tags(output)
    # Trainer's TensorBoard reporter files every non-eval log under "train/".
    for tag in (
        "posenc/locality",
        "posenc/symmetry",
        "posenc/symmetry_scale_aware",
        "posenc/layer_0/locality",
        "posenc/layer_1/symmetry",
        "posenc/layer_1/symmetry_scale_aware",
        "loss",
    ):
        assert f"train/{tag}" in tags, (tag, sorted(tags))
    assert "eval/loss" in tags
    assert tags["train/posenc/locality"] == [4, 8, 12]
    assert (output / "model.safetensors").exists() and (output / "checkpoint-12" / "model.safetensors").exists()
    state = json.loads((output / "checkpoint-12" / "trainer_state.json").read_text())
    logged = [entry for entry in state["log_history"] if "posenc/locality" in entry]
    assert [entry["step"] for entry in logged] == [4, 8, 12]
    assert all(0 < entry["posenc/locality"] < 1 for entry in logged)
    results = json.loads((output / "posenc_results.json").read_text())
    assert results["train_steps"] == 12 and results["perplexity"] > 1
    assert results["locality"] == pytest.approx(logged[-1]["posenc/locality"])
    assert PretrainResult.load(output) == returned
    assert [row["layer"] for row in returned.per_layer] == [0, 1]
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert losses[-1] < losses[0]
    assert (output / "posenc_plots" / "locality_symmetry_curves.png").stat().st_size > 0
    assert (output / "tokenizer.json").exists()


def test_accelerate_launch_two_processes_on_cpu(tmp_path):
    """accelerate 1.x's `--cpu` always starts one process (without MPI); `--multi_gpu` starts them with torchrun,
    and on a machine without GPUs the script switches Trainer to the CPU (gloo backend). With an empty cache, one
    process trains the tokenizer and prepares the corpus; the other reads both from the cache."""
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    output = tmp_path / "ddp"
    cache = tmp_path / "cache"
    text = data.builtin_corpus("stdlib")
    (cache / text.relative_to(cache_dir())).parent.mkdir(parents=True)
    shutil.copy(text, cache / text.relative_to(cache_dir()))
    with socket.socket() as probe:  # a free port, so a busy default port (29500) cannot fail the test
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [
            accelerate,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--main_process_port",
            str(port),
            "--dynamo_backend",
            "no",
            str(SCRIPT),
            "--variant",
            "rope",
            "--output_dir",
            str(output),
            *TINY_RUN,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**os.environ, "HF_POSENC_CACHE": str(cache)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    finished = sorted(re.findall(r"process (\d)/2 finished 12 steps", result.stdout))
    assert finished == ["0", "1"], result.stdout[-2000:]
    for built, reused in (
        ("trained the tokenizer", "reused the tokenizer"),
        ("prepared the", "reused the pretraining"),
    ):
        assert (result.stdout.count(built), result.stdout.count(reused)) == (1, 1), result.stdout[-2000:]
    results = json.loads((output / "posenc_results.json").read_text())
    assert results["train_loss"] < 8  # the loss of 2 processes is not doubled: ln(1000) = 6.9 at the start
    tags = tensorboard_tags(output)
    assert tags["train/posenc/locality"] == [4, 8, 12]  # measured and logged once, by the main process
    writers = {events.name.split(".")[-2] for events in output.glob("runs/**/events.out.tfevents.*")}
    assert len(writers) == 1  # event files carry the writer's pid: only the main process reports


class StopAtStep(TrainerCallback):
    """Simulates a crash right after a checkpoint: training stops and nothing else is written."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def loss_by_step(output_dir: Path, checkpoint: str) -> dict[int, float]:
    state = json.loads((output_dir / checkpoint / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    # A logged loss averages the steps since the previous log, so logs must fall on the checkpoint step.
    run = ["--variant", "attenuated", *TINY_RUN, "--logging_steps", "3"]
    run_pretrain([*run, "--output_dir", str(straight)])
    stopped = run_pretrain([*run, "--output_dir", str(interrupted)], callbacks=[StopAtStep(6)])
    assert stopped.train_steps == 6 and stopped.eval_loss is None
    assert not (interrupted / "checkpoint-12").exists() and not PretrainResult.exists_in(interrupted)
    resumed_result = run_pretrain(
        [*run, "--output_dir", str(interrupted), "--resume_from_checkpoint", str(interrupted / "checkpoint-6")]
    )
    expected, resumed = loss_by_step(straight, "checkpoint-12"), loss_by_step(interrupted, "checkpoint-12")
    assert sorted(resumed) == sorted(expected) == [3, 6, 9, 12]
    for step in (9, 12):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5)
    # The resumed run's train_loss is the whole run's mean (steps 1-12), as the uninterrupted run's is.
    assert resumed_result.train_steps == 12 and not (interrupted / "checkpoint-13").exists()
    assert resumed_result.train_loss == pytest.approx(PretrainResult.load(straight).train_loss, rel=1e-5)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--variant", "rotary"], "Unknown positional-encoding variant 'rotary'"),
        (["--variant", "learned", "--max_seq_length", "600"], "exceeds the 512-row position table of 'learned'"),
        (["--train_file", "/nonexistent/corpus.txt"], "--train_file /nonexistent/corpus.txt does not exist"),
        (["--tokenizer_name", "/nonexistent/tokenizer"], "is not a folder here"),
        (["--corpus", "klingon"], "Unknown --corpus 'klingon'"),
        (["--size", "huge"], "Unknown --size 'huge'"),
        (["--push_to_hub"], "--push_to_hub needs --hub_model_id"),
        (
            ["--variant", "rope", "--attenuation_strength", "0.1"],
            "--attenuation_strength is not a parameter of the 'rope'",
        ),
        (
            ["--variant", "attenuated", "--attenuation_strength", "-1"],
            r"attenuation_strength \(w\) must be a finite number >= 0",
        ),
        (
            ["--variant", "rope", "--config_overrides", "hidden_size=120,num_attention_heads=8"],
            "head dimension .* is odd",
        ),
    ],
)
def test_bad_arguments_fail_before_training(tmp_path, arguments, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        run_pretrain(["--output_dir", str(tmp_path / "out"), *arguments])
    assert not (tmp_path / "out").exists()


def test_the_script_reports_a_bad_argument_in_one_line_with_status_2(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--variant", "rotary", "--output_dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("pretrain.py: error: Unknown positional-encoding variant 'rotary'")
    assert "Traceback" not in result.stderr


def test_overwrite_output_dir_clears_the_earlier_run_and_keeps_the_users_files(tmp_path, capsys):
    output = tmp_path / "run"
    (output / "runs" / "old-run").mkdir(parents=True)
    (output / "runs" / "old-run" / "events.out.tfevents.1.host").write_bytes(b"stale curves")
    (output / "checkpoint-999").mkdir()
    (output / "notes.txt").write_text("mine")
    quick = ["--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no", "--posenc_metrics", "false"]
    run_pretrain(["--output_dir", str(output), *TINY_RUN, *quick, "--overwrite_output_dir", "true"])
    printed = capsys.readouterr().out
    assert "removed the earlier run's checkpoint-999, runs from" in printed and "left notes.txt" in printed
    assert not (output / "checkpoint-999").exists() and not (output / "runs" / "old-run").exists()
    assert (output / "notes.txt").read_text() == "mine" and (output / "model.safetensors").exists()


def test_continue_pretraining_a_saved_model_on_a_few_blocks(tmp_path, capsys):
    """--model_name_or_path starts from the saved weights, config and tokenizer; --max_train_samples and
    --max_eval_samples cut the blocks as run_mlm.py does; flags that describe another model are refused."""
    quick = ["--eval_strategy", "no", "--save_strategy", "no", "--posenc_metrics", "false"]
    first = tmp_path / "first"
    run_pretrain(["--variant", "alibi", "--output_dir", str(first), *TINY_RUN, *quick, "--max_steps", "2"])
    capsys.readouterr()
    second = tmp_path / "second"
    at = TINY_RUN.index("--config_overrides")
    tiny_run = TINY_RUN[:at] + TINY_RUN[at + 2 :]  # the saved model brings its config
    limits = ["--max_train_samples", "16", "--max_eval_samples", "3", "--max_seq_length", "48"]
    result = run_pretrain(
        ["--model_name_or_path", str(first), "--output_dir", str(second), *tiny_run, *quick, *limits]
        + ["--max_steps", "1", "--learning_rate", "1e-12"]
    )
    printed = capsys.readouterr().out
    assert f"alibi ({first}): " in printed and "16 training and 3 validation blocks of 48 tokens" in printed
    assert result.variant == "alibi"
    before = safetensors.torch.load_file(first / "model.safetensors")
    after = safetensors.torch.load_file(second / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[name], after[name], atol=1e-6) for name in before)  # lr 1e-12: the same weights
    config = json.loads((second / "config.json").read_text())
    assert config["model_type"] == "posenc_alibi" and config["trained_max_length"] == 48

    for flags, message in (
        (["--variant", "rope"], "--variant rope contradicts"),
        (["--size", "mini"], "--size would change the model saved in"),
        (["--alibi_symmetric", "true"], "--alibi_symmetric would change the model saved in"),
    ):
        with pytest.raises(ValueError, match=message):
            run_pretrain(["--model_name_or_path", str(first), "--output_dir", str(tmp_path / "x"), *tiny_run, *flags])
    bert = tmp_path / "bert"
    BertForMaskedLM(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(bert)
    with pytest.raises(ValueError, match="is a 'bert' model; continuing pretraining takes an hf_posenc variant"):
        run_pretrain(["--model_name_or_path", str(bert), "--output_dir", str(tmp_path / "y"), *tiny_run])
    with pytest.raises(ValueError, match="--max_train_samples must be at least 1 block"):
        run_pretrain(["--output_dir", str(tmp_path / "z"), *TINY_RUN, "--max_train_samples", "0"])


def test_saved_weights_share_the_folders_permissions(tmp_path):
    """safetensors alone writes the weights 0600 beside a 0644 config.json; pretraining's saves are consistent."""
    output = tmp_path / "run"
    quick = ["--max_steps", "2", "--save_steps", "2", "--eval_strategy", "no", "--posenc_metrics", "false"]
    previous = os.umask(0o022)
    try:
        run_pretrain(["--output_dir", str(output), *TINY_RUN, *quick])
    finally:
        os.umask(previous)
    for folder in (output, output / "checkpoint-2"):
        assert (folder / "config.json").stat().st_mode & 0o777 == 0o644
        assert (folder / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_hf_posenc_pretrain_is_the_script_without_a_clone(tmp_path):
    """The installed console script pretrains with the script's flags, from a folder outside the repository."""
    hf_posenc_command = shutil.which("hf-posenc", path=str(Path(sys.executable).parent))
    output = tmp_path / "console"
    result = subprocess.run(
        [hf_posenc_command, "pretrain", "--variant", "alibi", "--output_dir", str(output), *TINY_RUN],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "process 0/1 finished 12 steps" in result.stdout
    assert json.loads((output / "posenc_results.json").read_text())["variant"] == "alibi"
    assert (output / "model.safetensors").exists()


def test_ctrl_c_ends_pretraining_with_one_line(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "hf_posenc", "pretrain", "--output_dir", str(tmp_path / "out"), *TINY_RUN]
        + ["--max_steps", "100000", "--logging_steps", "1"],  # the last of a repeated flag wins
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # As from a terminal: a test run started in the background (`make test &`) ignores SIGINT, and so would the
        # child it starts.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    for line in process.stdout:  # the first logged loss: training is under way
        if "loss" in line:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert stderr.rstrip().endswith("hf-posenc pretrain: interrupted"), stderr[-2000:]
    assert "Traceback" not in stderr


def test_empty_corpus_and_vocabulary_mismatch_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty"):
        run_pretrain(["--output_dir", str(tmp_path / "a"), "--train_file", str(empty)])
    from hf_posenc import data

    tokenizer = data.train_wordpiece_tokenizer([["a small corpus of words", "more words here"]] * 20, vocab_size=60)
    tokenizer.save_pretrained(tmp_path / "tok")
    with pytest.raises(ValueError, match=f"has {len(tokenizer)} tokens but --vocab_size is 999"):
        run_pretrain(
            [
                "--output_dir",
                str(tmp_path / "b"),
                "--corpus",
                "stdlib",
                "--tokenizer_name",
                str(tmp_path / "tok"),
                "--vocab_size",
                "999",
            ]
        )
    assert not (tmp_path / "b").exists()


def test_a_trained_model_is_never_overwritten_silently(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a trained model"):
        run_pretrain(["--output_dir", str(tmp_path / "out")])
    assert (tmp_path / "out" / "config.json").read_text() == "{}"


def test_callback_works_on_a_stock_sdpa_bert_and_restores_its_state(tmp_path):
    """A transformers model whose SDPA path returns no weights: the callback switches it to eager for the probe
    and restores SDPA and train mode afterwards."""
    model = BertForMaskedLM(
        BertConfig(
            vocab_size=50,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            attn_implementation="sdpa",
        )
    )
    dataset = [{"input_ids": torch.randint(5, 50, (16,)).tolist(), "attention_mask": [1] * 16} for _ in range(6)]
    dataset[1]["attention_mask"] = [1] * 10 + [0] * 6
    batch = probe_batch_from_dataset(dataset, 4)
    model.train()
    summary = summarize_model(model, batch)
    assert model.training and model.config._attn_implementation == "sdpa"
    assert summary["num_layers"] == 2 and 0 < summary["locality"] < 1

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(dataset)

        def __getitem__(self, index):
            row = dataset[index]
            ids = torch.tensor(row["input_ids"])
            return {"input_ids": ids, "attention_mask": torch.tensor(row["attention_mask"]), "labels": ids}

    trainer = Trainer(
        model=model,
        train_dataset=Rows(),
        args=TrainingArguments(
            output_dir=str(tmp_path),
            max_steps=3,
            logging_steps=1,
            report_to=[],
            per_device_train_batch_size=2,
            disable_tqdm=True,
            dataloader_pin_memory=False,
            save_strategy="no",
        ),
    )
    callback = LocalitySymmetryCallback.install(
        trainer, probe_batch=batch, every_n_steps=2, per_head=True, final_plot=False
    )
    trainer.train()
    assert [step for step, _ in callback.summaries] == [2, 3]
    logged = [entry for entry in trainer.state.log_history if "posenc/locality" in entry]
    assert [entry["step"] for entry in logged] == [2, 3]
    assert "posenc/layer_1/head_3/symmetry_scale_aware" in logged[0]


def test_callback_without_its_trainer_says_how_to_install_it(tmp_path):
    model = BertForMaskedLM(
        BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64)
    )
    trainer = Trainer(
        model=model,
        train_dataset=[{"input_ids": torch.ones(8, dtype=torch.long)}] * 4,
        args=TrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to=[]),
    )
    trainer.add_callback(
        LocalitySymmetryCallback(
            probe_batch={
                "input_ids": torch.ones(1, 8, dtype=torch.long),
                "attention_mask": torch.ones(1, 8, dtype=torch.long),
            }
        )
    )
    with pytest.raises(RuntimeError, match=r"LocalitySymmetryCallback.install\(trainer"):
        trainer.train()


def test_keyword_arguments_build_the_same_run_as_the_flags(tmp_path):
    from hf_posenc.training import pretrain_arguments

    from_keywords = pretrain_arguments(
        variant="attenuated",
        attenuation_strength=[0.5, 0.05],
        corpus="stdlib",
        max_seq_length=32,
        max_steps=12,
        posenc_per_head=True,
        output_dir=str(tmp_path),
    )
    from_flags = parse_pretrain_arguments(
        [
            "--variant",
            "attenuated",
            "--attenuation_strength",
            "0.5",
            "0.05",
            "--corpus",
            "stdlib",
            "--max_seq_length",
            "32",
            "--max_steps",
            "12",
            "--posenc_per_head",
            "--output_dir",
            str(tmp_path),
        ]
    )
    assert from_keywords == from_flags
    assert from_keywords["training_args"].learning_rate == 1e-3  # pretraining's default, not Trainer's
    with pytest.raises(ValueError, match="unknown argument 'max_step'; did you mean 'max_steps'"):
        pretrain_arguments(max_step=3)

"""Bad input to pretraining (hf_posenc.training.pretrain, examples/pretrain.py): refused before training with one
line that says what to change, and nothing the user owns or trained is lost."""

import errno
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import SENTENCES
from transformers import TrainerCallback

from hf_posenc.cli import main
from hf_posenc.training import parse_pretrain_arguments, pretrain
from hf_posenc.training.guards import DivergenceGuard, OutOfDiskSpace, TrainingDiverged

TINY_MODEL = "hidden_size=32,num_hidden_layers=1,num_attention_heads=4,intermediate_size=64"
QUIET = [
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--dataloader_pin_memory",
    "false",
    "--posenc_metrics",
    "false",
    "--eval_strategy",
    "no",
    "--save_strategy",
    "no",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """40 short documents: about 60 training and 3 validation blocks of 32 tokens."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    documents = ["\n".join(SENTENCES[index % 4 :] + SENTENCES[: index % 4]) for index in range(40)]
    path.write_text("\n\n".join(documents) + "\n")
    return path


def run(output_dir: Path, corpus: Path, *flags: str, callbacks=()):
    argv = [
        "--output_dir",
        str(output_dir),
        "--train_file",
        str(corpus),
        "--vocab_size",
        "100",
        "--max_seq_length",
        "32",
        "--config_overrides",
        TINY_MODEL,
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "8",
        "--max_steps",
        "2",
        "--warmup_steps",
        "0",
        *QUIET,
        *flags,
    ]
    return pretrain(**parse_pretrain_arguments(argv), callbacks=callbacks)


def refused(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message  # the script prints it as one line
    return message


def test_files_the_user_put_in_the_output_dir_are_named_and_kept(tmp_path, corpus):
    output = tmp_path / "out"
    output.mkdir()
    (output / "tokenizer.json").write_text("my own tokenizer")
    (output / "posenc_results.json").write_text('{"an": "earlier run"}')
    with pytest.raises(FileExistsError) as error:
        run(output, corpus)
    message = refused(error)
    assert "posenc_results.json, tokenizer.json" in message and "--overwrite_output_dir" in message
    assert (output / "tokenizer.json").read_text() == "my own tokenizer"
    assert (output / "posenc_results.json").read_text() == '{"an": "earlier run"}'


class FailOnEvaluate(TrainerCallback):
    def on_evaluate(self, args, state, control, **kwargs):
        raise RuntimeError("evaluation failed")


def test_a_failing_evaluation_does_not_lose_the_trained_model(tmp_path, corpus):
    with pytest.raises(RuntimeError, match="evaluation failed"):
        run(tmp_path / "out", corpus, callbacks=[FailOnEvaluate()])
    assert (tmp_path / "out" / "model.safetensors").stat().st_size > 0


def test_a_validation_split_smaller_than_one_eval_batch_is_evaluated(tmp_path, corpus, capsys):
    result = run(tmp_path / "out", corpus, "--per_device_eval_batch_size", "64")
    validation_blocks = int(re.search(r"(\d+) validation blocks", capsys.readouterr().out).group(1))
    assert 0 < validation_blocks < 64
    assert math.isfinite(result.eval_loss) and result.perplexity == pytest.approx(math.exp(result.eval_loss))
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_a_corpus_smaller_than_one_batch_fails_before_training(tmp_path, corpus):
    with pytest.raises(ValueError) as error:
        run(tmp_path / "out", corpus, "--per_device_train_batch_size", "512")
    message = refused(error)
    assert re.search(
        r"The training split has \d+ blocks of 32 tokens, fewer than one batch \(512 per device\)", message
    )
    assert "--per_device_train_batch_size" in message and "--max_seq_length" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--mlm_probability", "0.0001"], r"masks on average 0.024 of the 240 maskable tokens of a training step"),
        # 6 maskable tokens per block and one block per evaluation batch: 0.9 ** 6 of them have no masked token
        # (training steps of 32 blocks are fine).
        (
            ["--mlm_probability", "0.1", "--max_seq_length", "8", "--per_device_eval_batch_size", "1"]
            + ["--per_device_train_batch_size", "32"],
            r"evaluation batches .* without a masked token",
        ),
    ],
)
def test_a_masking_probability_that_masks_nothing_fails_before_training(tmp_path, corpus, flags, message):
    with pytest.raises(ValueError, match=message) as error:
        run(tmp_path / "out", corpus, *flags)
    assert "Raise --mlm_probability" in refused(error)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flags, error_type, message",
    [
        (["--max_seq_length", "-5"], ValueError, "--max_seq_length must be at least 3"),
        (["--validation_fraction", "1.5"], ValueError, "--validation_fraction must be between 0 and 1"),
        (["--vocab_size", "3"], ValueError, "--vocab_size must exceed the 5 special tokens"),
        (["--posenc_probe_sequences", "0"], ValueError, "--posenc_probe_sequences must be at least 1"),
        (
            ["--config_overrides", "num_hiden_layers=1"],
            ValueError,
            "'num_hiden_layers' is not a field of the 'rope' config; did you mean 'num_hidden_layers'",
        ),
        (["--config_overrides", "num_hidden_layers=two"], ValueError, "num_hidden_layers takes an integer"),
        (["--config_overrides", "pre_layer_norm=maybe"], ValueError, "pre_layer_norm takes true or false"),
    ],
)
def test_bad_numbers_and_overrides_fail_before_reading_the_corpus(tmp_path, corpus, flags, error_type, message):
    with pytest.raises(error_type, match=re.escape(message)) as error:
        run(tmp_path / "out", corpus, *flags)
    refused(error)
    assert not (tmp_path / "out").exists()


def test_a_folder_given_as_train_file_is_named(tmp_path, corpus):
    with pytest.raises(ValueError) as error:
        run(tmp_path / "out", corpus, "--train_file", str(tmp_path))
    assert refused(error) == (
        f"--train_file {tmp_path} is a folder; give the path of a text file (one sentence per line, a blank line "
        "between documents)."
    )


def test_an_output_dir_that_is_a_file_fails_before_training(tmp_path, corpus):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(FileExistsError) as error:
        run(tmp_path / "out", corpus)
    assert "is a file, not a folder" in refused(error)
    assert (tmp_path / "out").read_text() == "not a folder"


def as_another_user(function) -> str:
    """Call `function` in a forked child that runs as the user `nobody` (root may write anywhere, so a read-only
    folder is only read-only to someone else) and return the type and message of what it raised."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        outcome = "nothing raised"
        try:
            os.setgid(65534)
            os.setuid(65534)
            function()
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            outcome = f"{type(error).__name__}: {error}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        outcome = pipe.read()
    os.waitpid(child, 0)
    return outcome


def test_a_read_only_output_folder_fails_before_training():
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o755)  # others may look inside, as in any home folder
        read_only = Path(scratch, "read-only")
        read_only.mkdir(mode=0o555)
        output = read_only / "run"

        def attempt():
            pretrain(**parse_pretrain_arguments(["--output_dir", str(output), "--corpus", "stdlib"]))

        if os.geteuid() == 0:
            outcome = as_another_user(attempt)
        else:
            try:
                attempt()
                outcome = "nothing raised"
            except PermissionError as error:
                outcome = f"PermissionError: {error}"
        os.chmod(read_only, 0o755)  # so that the temporary folder can be removed
    assert outcome == (
        f"PermissionError: --output_dir {output} cannot be written: {read_only} is read-only for this user; choose a "
        f"folder you can write to, or change its permissions (chmod u+w {read_only})."
    )


# ------------------------------------------------------------------------------------ divergence and a full disk
class PoisonWeights(TrainerCallback):
    """Turns the first weight tensor (the word embeddings) NaN at the end of `step`, as a diverging step does."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))


def test_a_run_that_diverges_stops_at_the_step_it_does(tmp_path, corpus):
    output = tmp_path / "out"
    with pytest.raises(TrainingDiverged) as error:
        run(output, corpus, "--learning_rate", "1e6", "--max_steps", "12", "--logging_steps", "1")
    message = refused(error)
    assert re.fullmatch(
        r"training diverged at step [12]: (loss nan|the weights hold NaN or inf); lower --learning_rate \(now 1e\+06\), "
        r"warm up longer \(--warmup_ratio\) or clip gradients harder \(--max_grad_norm, now 1\); no checkpoint with "
        r"finite weights was saved before it\.",
        message,
    ), message
    assert not (output / "model.safetensors").exists() and not (output / "posenc_results.json").exists()


def test_a_diverged_run_names_its_last_good_checkpoint_and_saves_no_diverged_one(tmp_path, corpus):
    output = tmp_path / "out"
    flags = ["--max_steps", "8", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "2"]
    with pytest.raises(TrainingDiverged) as error:
        run(output, corpus, *flags, callbacks=[PoisonWeights(step=3)])
    checkpoint = output / "checkpoint-2"
    assert refused(error).startswith("training diverged at step 4: the weights hold NaN or inf; lower")
    assert refused(error).endswith(
        f"the last good checkpoint is {checkpoint} (continue from it with --resume_from_checkpoint {checkpoint})."
    )
    assert sorted(path.name for path in output.glob("checkpoint-*")) == ["checkpoint-2"]  # step 4 was not saved


def test_a_nan_loss_in_the_logs_stops_the_run_and_skips_diverged_checkpoints(tmp_path, corpus):
    from safetensors.torch import load_file, save_file
    from transformers import TrainerControl, TrainerState, TrainingArguments

    output = tmp_path / "out"
    run(output, corpus, "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2")
    weights = load_file(output / "checkpoint-4" / "model.safetensors")
    save_file({name: tensor.fill_(float("inf")) for name, tensor in weights.items()},
              output / "checkpoint-4" / "model.safetensors")  # fmt: skip
    guard = DivergenceGuard()
    arguments = TrainingArguments(output_dir=str(output), learning_rate=0.5, report_to="none")
    guard.on_log(arguments, TrainerState(global_step=5), TrainerControl(), logs={"loss": 3.2})  # finite: goes on
    with pytest.raises(TrainingDiverged) as error:
        guard.on_log(arguments, TrainerState(global_step=5), TrainerControl(), logs={"loss": float("nan")})
    assert refused(error).startswith("training diverged at step 5: loss nan; lower --learning_rate (now 0.5)")
    assert f"the last good checkpoint is {output / 'checkpoint-2'} " in refused(error)


def test_the_attention_metrics_of_a_diverged_model_say_so(tmp_path, corpus):
    flags = ["--posenc_metrics", "true", "--posenc_every_n_steps", "3", "--logging_steps", "2", "--max_steps", "6"]
    with pytest.raises(RuntimeError) as error:
        run(tmp_path / "out", corpus, *flags, callbacks=[PoisonWeights(step=3)])
    assert refused(error).startswith(
        "the model's attention is not finite at step 3 (training diverged?); its weights hold NaN or inf; lower "
        "--learning_rate"
    )


def test_a_full_disk_during_a_checkpoint_removes_the_half_checkpoint(tmp_path, corpus, monkeypatch):
    output = tmp_path / "out"
    save = torch.save

    def disk_full_at_step_4(value, file, *args, **kwargs):
        # The disk cannot be filled safely in a test: the optimizer's file of checkpoint 4 fails as a full disk
        # does, after its first bytes and after the weights were written.
        if Path(file).parent.name == "checkpoint-4" and Path(file).name == "optimizer.pt":
            Path(file).write_bytes(b"PK\x03\x04")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return save(value, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_step_4)
    with pytest.raises(OutOfDiskSpace) as error:
        run(output, corpus, "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2")
    message = refused(error)
    assert re.fullmatch(
        rf"the disk is full: saving {output / 'checkpoint-4'} failed half-way \(removed it\); a checkpoint takes "
        rf"about [\d.]+ MB and [\d,.]+ MB is free under {output}\. Free some space or keep fewer checkpoints "
        rf"\(--save_total_limit\), and continue from {output / 'checkpoint-2'} with --resume_from_checkpoint "
        rf"{output / 'checkpoint-2'}\.",
        message,
    ), message
    assert sorted(path.name for path in output.glob("checkpoint-*")) == ["checkpoint-2"]
    assert (output / "checkpoint-2" / "optimizer.pt").stat().st_size > 100  # the earlier checkpoint is whole


# -------------------------------------------------------------------------------------- the data a run reads
def test_a_prepared_dataset_folder_that_does_not_exist_is_refused(tmp_path, capsys):
    missing = tmp_path / "prepared-typo"
    argv = ["pretrain", "--output_dir", str(tmp_path / "out"), "--prepared_dataset", str(missing)]
    assert main(argv) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(
        f"hf-posenc pretrain: error: --prepared_dataset {missing} does not exist. Without --train_file or "
        "--dataset_name it names a corpus prepared earlier: check the path."
    )
    assert not missing.exists() and not (tmp_path / "out").exists()


def test_a_validation_file_that_is_the_train_file_is_refused(tmp_path, corpus):
    copy = tmp_path / "copy.txt"
    copy.write_bytes(corpus.read_bytes())
    for validation, relation in ((corpus, "is the same file as"), (copy, "holds the same text as")):
        with pytest.raises(ValueError) as error:
            run(tmp_path / "out", corpus, "--validation_file", str(validation))
        assert refused(error).startswith(f"--validation_file {validation} {relation} --train_file {corpus}, so the")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("rate", ["inf", "nan", "0"])
def test_a_learning_rate_that_is_not_a_finite_positive_number_is_refused(tmp_path, corpus, rate):
    with pytest.raises(ValueError, match="--learning_rate must be a finite number above 0"):
        run(tmp_path / "out", corpus, "--learning_rate", rate)
    assert not (tmp_path / "out").exists()


def test_an_export_onto_a_read_only_file_system_is_one_line(tmp_path, tiny_tokenizer):
    """A real read-only mount, made in a user and mount namespace of its own (no privilege needed where the kernel
    allows unprivileged namespaces)."""
    from conftest import tiny_mlm

    run_folder = tmp_path / "run"
    tiny_mlm("alibi", vocab_size=len(tiny_tokenizer)).save_pretrained(run_folder)
    tiny_tokenizer.save_pretrained(run_folder)
    mount_point = tmp_path / "read-only"
    mount_point.mkdir()
    command = (
        f"mount -t tmpfs -o ro tmpfs {mount_point} && exec {sys.executable} -m hf_posenc export {run_folder} "
        f"{mount_point / 'export'}"
    )
    namespaces = ["unshare", "--user", "--map-root-user", "--mount"]
    if shutil.which("unshare") is None or subprocess.run([*namespaces, "true"], capture_output=True).returncode:
        pytest.skip("this kernel or container gives no user and mount namespaces to mount a read-only file system")
    result = subprocess.run([*namespaces, "sh", "-c", command], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"hf-posenc export: error: cannot write {mount_point / 'export'}: the file system is mounted read-only; "
        "choose a folder on a writable disk."
    )

"""Bad input to pretraining (hf_posenc.training.pretrain, examples/pretrain.py): refused before training with one
line that says what to change, and nothing the user owns or trained is lost."""

import math
import os
import re
import tempfile
from pathlib import Path

import pytest
from conftest import SENTENCES
from transformers import TrainerCallback

from hf_posenc.training import parse_pretrain_arguments, pretrain

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

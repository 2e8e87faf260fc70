"""The data of pretraining runs (hf_posenc.training.corpus): the prepared, cached pipeline, --prepared_dataset,
and --streaming, through load_pretraining_data and short pretrain runs."""

import json
from pathlib import Path

import numpy as np
import pytest
from transformers import TrainerCallback

from hf_posenc import data
from hf_posenc.training import pretrain, pretrain_arguments
from hf_posenc.training.corpus import load_pretraining_data

TINY_MODEL = "hidden_size=32,num_hidden_layers=1,num_attention_heads=4,intermediate_size=64"
QUIET = dict(
    report_to=[],
    disable_tqdm=True,
    dataloader_pin_memory=False,
    posenc_metrics=False,
    eval_strategy="no",
    save_strategy="no",
    warmup_steps=0,
)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HF_POSENC_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """60 documents whose text differs (a number in every line), so that blocks of different documents differ."""
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    documents = [
        "\n".join(f"document {index} line {line} tells about the {index * 7 + line} river" for line in range(4))
        for index in range(60)
    ]
    path.write_text("\n\n".join(documents) + "\n")
    return path


def data_args(**options):
    return pretrain_arguments(output_dir="unused", **{"vocab_size": 100, "max_seq_length": 32, **options})["data_args"]


def rows(dataset) -> list[tuple]:
    return [tuple(int(token) for token in row["input_ids"]) for row in dataset]


def test_second_run_reads_the_cache_and_blocks_equal_the_in_memory_path(corpus, cache, capsys):
    first = load_pretraining_data(data_args(train_file=str(corpus)), seed=42)
    assert "trained the tokenizer" in capsys.readouterr().out
    second = load_pretraining_data(data_args(train_file=str(corpus)), seed=42)
    out = capsys.readouterr().out
    assert "reused the tokenizer" in out and "reused the pretraining corpus" in out and "prepared the" not in out
    assert second.tokenizer.backend_tokenizer.to_str() == first.tokenizer.backend_tokenizer.to_str()
    assert len(list((cache / "prepared").iterdir())) == 2  # one prepared folder and its lock
    # The tokenizer of the bounded sample equals the one of the whole text here (fewer lines than the sample), and
    # the blocks equal the old in-memory path's byte for byte.
    documents = data.read_documents(corpus)
    reference = data.train_wordpiece_tokenizer(documents, vocab_size=100, model_max_length=32)
    assert reference.backend_tokenizer.to_str() == first.tokenizer.backend_tokenizer.to_str()
    train, validation = data.pack_for_mlm(documents, reference, 32, 0.05, seed=42)
    assert rows(first.train) == rows(train) and rows(first.validation) == rows(validation)


def test_a_vocabulary_smaller_than_asked_is_announced_when_trained_and_when_reused(corpus, cache, capsys):
    for _ in range(2):
        tokenizer = load_pretraining_data(data_args(train_file=str(corpus), vocab_size=5000), seed=42).tokenizer
        printed = capsys.readouterr().out
        assert len(tokenizer) < 5000
        assert (
            f"note: the text yields a vocabulary of {len(tokenizer):,} tokens, fewer than --vocab_size 5,000" in printed
        )
    load_pretraining_data(data_args(train_file=str(corpus)), seed=42)  # 100 tokens: all there, nothing to say
    assert "note:" not in capsys.readouterr().out


def test_tokenizer_sample_changes_the_tokenizer_key(corpus, cache):
    whole = load_pretraining_data(data_args(train_file=str(corpus)), seed=42)
    sampled = load_pretraining_data(data_args(train_file=str(corpus), tokenizer_sample=10), seed=42)
    assert len(list((cache / "tokenizers").glob("*/tokenizer.json"))) == 2
    assert sampled.tokenizer.backend_tokenizer.to_str() != whole.tokenizer.backend_tokenizer.to_str()


def test_prepared_dataset_folder_is_trained_on_without_the_text(corpus, cache, tmp_path, capsys):
    folder = tmp_path / "prepared"
    written = load_pretraining_data(data_args(train_file=str(corpus), prepared_dataset=str(folder)), seed=42)
    assert "prepared the pretraining corpus in " + str(folder) in capsys.readouterr().out
    read = load_pretraining_data(data_args(prepared_dataset=str(folder)), seed=42)  # no corpus flags: read as is
    assert rows(read.train) == rows(written.train) and rows(read.validation) == rows(written.validation)
    assert read.tokenizer.get_vocab() == written.tokenizer.get_vocab()
    assert read.dataset_description == f"corpus prepared in {folder}"
    with pytest.raises(ValueError, match="holds blocks of 32 tokens but --max_seq_length is 16"):
        load_pretraining_data(data_args(prepared_dataset=str(folder), max_seq_length=16), seed=42)


def test_a_tiny_streaming_run_trains_three_steps(corpus, cache, tmp_path):
    result = pretrain(
        **pretrain_arguments(
            output_dir=str(tmp_path / "run"),
            train_file=str(corpus),
            streaming=True,
            streaming_validation_documents=5,
            streaming_shuffle_buffer=16,
            vocab_size=100,
            max_seq_length=32,
            config_overrides=TINY_MODEL,
            per_device_train_batch_size=4,
            per_device_eval_batch_size=4,
            max_steps=3,
            **QUIET,
        )
    )
    assert result.train_steps == 3 and np.isfinite(result.eval_loss)
    assert not (cache / "prepared").exists()  # nothing prepared on disk


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(streaming=True, max_steps=-1), "--streaming needs --max_steps"),
        (dict(streaming=True, max_steps=3, prepared_dataset="somewhere"), "--prepared_dataset has no use with it"),
        (dict(tokenizer_sample=0), "--tokenizer_sample must be at least 1"),
        (dict(preprocessing_num_workers=0), "--preprocessing_num_workers must be at least 1"),
    ],
)
def test_bad_data_flags_fail_before_reading_the_corpus(corpus, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        pretrain(**pretrain_arguments(output_dir=str(tmp_path / "out"), train_file=str(corpus), **options))
    assert not (tmp_path / "out").exists()


class StopAtStep(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_a_resumed_streaming_run_matches_an_uninterrupted_one(corpus, cache, tmp_path):
    """Trainer skips the batches it had trained on by reading them again from the stream (deterministic: the same
    files, shuffle seed and packing), so the resumed run sees the batches, and masks, of the uninterrupted one."""
    options = dict(
        train_file=str(corpus),
        streaming=True,
        streaming_validation_documents=5,
        streaming_shuffle_buffer=16,
        vocab_size=100,
        max_seq_length=32,
        config_overrides=TINY_MODEL,
        per_device_train_batch_size=4,
        max_steps=6,
        logging_steps=2,
        **{**QUIET, "save_strategy": "steps"},
        save_steps=2,
    )

    def losses(output):
        state = json.loads((output / "checkpoint-6" / "trainer_state.json").read_text())
        return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}

    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    pretrain(**pretrain_arguments(output_dir=str(straight), **options))
    pretrain(**pretrain_arguments(output_dir=str(interrupted), **options), callbacks=[StopAtStep(4)])
    assert not (interrupted / "checkpoint-6").exists()
    pretrain(
        **pretrain_arguments(
            output_dir=str(interrupted), resume_from_checkpoint=str(interrupted / "checkpoint-4"), **options
        )
    )
    expected, resumed = losses(straight), losses(interrupted)
    assert sorted(expected) == sorted(resumed) == [2, 4, 6]
    assert resumed[6] == pytest.approx(expected[6], rel=1e-5)


def test_a_dataset_goes_through_a_content_addressed_text_file(corpus, cache, tmp_path):
    """--dataset_name with a local dataset folder (the `datasets` text builder; the Hub works the same way)."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "train.txt").write_text(corpus.read_text())
    loaded = load_pretraining_data(data_args(dataset_name=str(folder)), seed=42)
    files = list((cache / "hub_text").glob("*.txt"))
    assert len(files) == 1 and data.read_documents(files[0]) == data.read_documents(corpus)
    mtime = files[0].stat().st_mtime_ns
    again = load_pretraining_data(data_args(dataset_name=str(folder)), seed=42)
    assert list((cache / "hub_text").glob("*.txt")) == files and files[0].stat().st_mtime_ns == mtime
    assert rows(again.train) == rows(loaded.train)
    with pytest.raises(ValueError, match="has no column 'body'"):
        load_pretraining_data(data_args(dataset_name=str(folder), text_column="body"), seed=42)

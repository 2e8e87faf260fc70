"""MLM masking collators (hf_posenc.data.masking): masks that change with the epoch, and a resumed Trainer run that
equals an uninterrupted one."""

from __future__ import annotations

import json
import random

import pytest
import torch
from conftest import SENTENCES, tiny_config
from transformers import AutoModelForMaskedLM, Trainer, TrainerCallback, TrainingArguments

from hf_posenc import data


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_tokenizer):
    folder = tmp_path_factory.mktemp("masking")
    generator = random.Random(0)
    documents = [[generator.choice(SENTENCES) for _ in range(3)] for _ in range(50)]
    corpus = data.write_documents(documents, folder / "corpus.txt")
    return data.prepare_mlm_datasets(
        train_files=corpus, tokenizer=tiny_tokenizer, max_seq_length=16, cache_folder=folder / "cache"
    )


def _labels_by_row(collator, rows):
    batch = collator([{"input_ids": row} for row in rows])
    return {tuple(row): labels for row, labels in zip(rows, batch["labels"].tolist())}


def test_masks_depend_on_epoch_not_on_the_batch(prepared, tiny_tokenizer):
    train, _ = prepared
    rows = train["input_ids"][:16]
    collator = data.EpochMaskingCollator(tiny_tokenizer, mlm_probability=0.3, mask_seed=5)
    collator.set_epoch(0)
    epoch0 = _labels_by_row(collator, rows)
    assert _labels_by_row(collator, rows[::-1][:7]) == {row: epoch0[row] for row in map(tuple, rows[::-1][:7])}
    collator.set_epoch(1)
    epoch1 = _labels_by_row(collator, rows)
    assert epoch1 != epoch0
    collator.set_epoch(None)
    assert _labels_by_row(collator, rows) == _labels_by_row(collator, rows)  # evaluation masks are fixed
    other_seed = data.EpochMaskingCollator(tiny_tokenizer, mlm_probability=0.3, mask_seed=6)
    other_seed.set_epoch(0)
    assert _labels_by_row(other_seed, rows) != epoch0


def test_bert_masking_rates_and_special_tokens(prepared, tiny_tokenizer):
    train, _ = prepared
    rows = train["input_ids"]
    collator = data.EpochMaskingCollator(tiny_tokenizer, mlm_probability=0.25, mask_seed=0)
    collator.set_epoch(3)
    batch = collator([{"input_ids": row} for row in rows])
    original = torch.tensor(rows)
    special = (original == tiny_tokenizer.cls_token_id) | (original == tiny_tokenizer.sep_token_id)
    masked = batch["labels"] != -100
    assert not (masked & special).any()
    assert torch.equal(batch["labels"][masked], original[masked])
    assert "attention_mask" not in batch  # no padding: the model's fast path needs no mask
    rate = masked.sum() / (~special).sum()
    assert 0.2 < rate < 0.3
    became_mask = (batch["input_ids"] == tiny_tokenizer.mask_token_id) & masked
    unchanged = (batch["input_ids"] == original) & masked
    assert 0.72 < became_mask.sum() / masked.sum() < 0.88
    assert 0.05 < unchanged.sum() / masked.sum() < 0.17  # 10% kept, plus random draws of the same token
    assert torch.equal(batch["input_ids"][~masked], original[~masked])


class StopAtStep(TrainerCallback):
    """A crash right after a checkpoint: training stops and nothing else is written."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _train(output_dir, train, validation, tokenizer, *, stop_at=None, resume=None):
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(tiny_config("rope", vocab_size=len(tokenizer)))
    collator = data.EpochMaskingCollator(tokenizer, mlm_probability=0.3, mask_seed=11)
    arguments = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        num_train_epochs=3,
        learning_rate=1e-2,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="steps",
        save_steps=7,
        report_to="none",
        use_cpu=True,
        seed=3,
        disable_tqdm=True,
    )
    callbacks = [collator.epoch_callback()] + ([StopAtStep(stop_at)] if stop_at else [])
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=collator,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def test_resumed_run_equals_an_uninterrupted_one(prepared, tiny_tokenizer, tmp_path):
    train, validation = prepared
    train = train.select(range(40))  # 5 steps per epoch: the checkpoint at step 7 falls inside the second epoch

    straight = _train(tmp_path / "straight", train, validation, tiny_tokenizer)
    _train(tmp_path / "interrupted", train, validation, tiny_tokenizer, stop_at=7)
    resumed = _train(
        tmp_path / "interrupted", train, validation, tiny_tokenizer, resume=str(tmp_path / "interrupted/checkpoint-7")
    )

    def after_checkpoint(trainer, key):
        return {entry["step"]: entry[key] for entry in trainer.state.log_history if key in entry and entry["step"] > 7}

    # Exactly equal, not approximately: the same masks for the same batches, in the second and third epochs.
    assert after_checkpoint(resumed, "loss") == after_checkpoint(straight, "loss")
    assert len(after_checkpoint(straight, "loss")) == 8
    assert after_checkpoint(resumed, "eval_loss") == after_checkpoint(straight, "eval_loss")
    for name, parameter in straight.model.state_dict().items():
        assert torch.equal(parameter, resumed.model.state_dict()[name]), name
    saved = json.loads((tmp_path / "interrupted/checkpoint-7/trainer_state.json").read_text())
    assert 1 < saved["epoch"] < 2


def test_persistent_workers_are_refused(prepared, tiny_tokenizer, tmp_path):
    collator = data.EpochMaskingCollator(tiny_tokenizer)
    arguments = TrainingArguments(
        output_dir=str(tmp_path), dataloader_num_workers=1, dataloader_persistent_workers=True, report_to="none"
    )
    with pytest.raises(ValueError, match="dataloader_persistent_workers=False"):
        collator.epoch_callback().on_train_begin(arguments, None, None)


def test_a_padded_batch_keeps_its_mask_and_document_ids_are_padded(tiny_tokenizer):
    collator = data.EpochMaskingCollator(tiny_tokenizer, mlm_probability=0.3, mask_seed=0)
    ids = tiny_tokenizer(SENTENCES[:2])["input_ids"]
    rows = [{"input_ids": row, "document_ids": [4] * 3 + [9] * (len(row) - 3)} for row in ids]
    batch = collator(rows)
    width = max(len(row) for row in ids)
    assert batch["attention_mask"].tolist() == [[1] * len(row) + [0] * (width - len(row)) for row in ids]
    assert batch["document_ids"].tolist() == [
        row["document_ids"] + [-1] * (width - len(row["input_ids"])) for row in rows
    ]
    full = collator([{"input_ids": row} for row in [ids[0], ids[0]]])
    assert set(full) == {"input_ids", "labels"}


def test_a_document_aware_batch_trains_the_model(tiny_tokenizer):
    documents = [[sentence] for sentence in SENTENCES] * 6
    train, _ = data.pack_for_mlm(documents, tiny_tokenizer, 16, document_aware=True)
    collator = data.EpochMaskingCollator(tiny_tokenizer, mlm_probability=0.3, mask_seed=0)
    batch = collator([train[index] for index in range(4)])
    assert batch["document_ids"].shape == batch["input_ids"].shape
    model = AutoModelForMaskedLM.from_config(tiny_config("learned", vocab_size=len(tiny_tokenizer)))
    output = model(**batch)
    assert torch.isfinite(output.loss)
    without_documents = model(**{key: value for key, value in batch.items() if key != "document_ids"})
    assert not torch.allclose(output.loss, without_documents.loss)  # the documents changed what the model saw

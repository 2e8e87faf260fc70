"""The training callback with the measurements added after the paper: a real Trainer run of a tiny RoPE model that
reports to TensorBoard. The console (trainer.log, hence log_history) gets every metric's overall value; the
per-layer values of the sinks and frequency bands and the log-binned profile go to TensorBoard only."""

from __future__ import annotations

import torch
from conftest import SENTENCES, tensorboard_tags, tiny_config
from transformers import AutoModelForMaskedLM, Trainer, TrainingArguments

from hf_posenc.analysis.callback import LocalitySymmetryCallback


def test_callback_logs_sinks_bands_and_bins_without_flooding_the_console(tmp_path, tiny_tokenizer):
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(tiny_config("rope", vocab_size=len(tiny_tokenizer)))
    encoded = tiny_tokenizer(SENTENCES * 4, truncation=True, max_length=24)
    rows = []
    for ids in encoded["input_ids"]:
        labels = [-100] * len(ids)
        labels[2] = ids[2]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})

    def collate(batch):
        length = max(len(row["input_ids"]) for row in batch)
        pad = {"input_ids": tiny_tokenizer.pad_token_id, "attention_mask": 0, "labels": -100}
        return {key: torch.tensor([row[key] + [pad[key]] * (length - len(row[key])) for row in batch]) for key in pad}

    arguments = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        logging_steps=1,
        per_device_train_batch_size=4,
        report_to=["tensorboard"],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=arguments, train_dataset=rows, data_collator=collate, processing_class=tiny_tokenizer
    )
    callback = LocalitySymmetryCallback.install(trainer, probe_dataset=rows, num_probe_sequences=4, final_plot=False)
    trainer.train()

    step, summary = callback.summaries[-1]
    assert step == 2 and summary["metrics"][3:] == [
        "sink_cls",
        "sink_sep",
        "rotary_high",
        "rotary_medium",
        "rotary_low",
    ]
    logged = [entry for entry in trainer.state.log_history if "posenc/locality" in entry]
    assert [entry["step"] for entry in logged] == [1, 2]
    assert logged[-1]["posenc/sink_cls"] == summary["sink_cls"]
    assert logged[-1]["posenc/rotary_low"] == summary["rotary_low"]
    assert "posenc/layer_0/locality" in logged[-1]  # the paper's metrics per layer, as before
    assert not any("layer_0/sink" in key or "distance_" in key for key in logged[-1])  # no flood on the console
    tags = tensorboard_tags(tmp_path)
    for tag in (
        "train/posenc/sink_sep",
        "train/posenc/layer_1/sink_cls",
        "train/posenc/layer_0/rotary_high",
        "train/posenc/distance_self",
        "train/posenc/distance_right_2-3",
        "train/posenc/layer_1/symmetry",
    ):
        assert tags.get(tag) == [1, 2], (tag, sorted(tags))

"""Fine-tuning a sequence classifier (hf_posenc.training.finetune): model loading from any local folder, dynamic
padding, a tiny task learnt for real, predictions mapped through a kept head."""

import pytest
from conftest import tiny_config

from hf_posenc.tasks import SNLI
from hf_posenc.training.finetune import (
    FinetuneArguments,
    build_trainer,
    finetune,
    load_sequence_classifier,
    output_to_label_map,
    predict,
)

# A pair task a tiny model learns in a few steps: the hypothesis's animal decides the label.
PREMISE = "the children laughed when the small dog chased the red ball"
EXAMPLES = [
    {"sentence1": PREMISE, "sentence2": hypothesis, "gold_label": label}
    for hypothesis, label in [
        ("the dog slept by the door", "entailment"),
        ("the cat sat on the mat", "contradiction"),
        ("a dog is playing", "entailment"),
        ("a cat is walking along the beach", "contradiction"),
    ]
]


@pytest.fixture()
def tiny_rope_folder(tmp_path, tiny_tokenizer):
    from transformers import AutoModelForMaskedLM

    folder = tmp_path / "tiny-rope"
    AutoModelForMaskedLM.from_config(tiny_config("rope", vocab_size=len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def test_a_posenc_variant_loads_as_a_classifier_without_remote_code(tiny_rope_folder):
    model = load_sequence_classifier(tiny_rope_folder)
    assert type(model).__module__ == "hf_posenc.modeling_posenc"  # the installed class, not the folder's copy
    assert model.config.id2label == dict(enumerate(SNLI.label_names))


def test_finetune_learns_a_tiny_task_and_pads_each_batch_to_its_longest(tiny_rope_folder, tiny_tokenizer, tmp_path):
    model = load_sequence_classifier(tiny_rope_folder)
    trainer = finetune(
        model,
        tiny_tokenizer,
        EXAMPLES * 4,
        output_dir=tmp_path / "trainer",
        arguments=FinetuneArguments(per_device_train_batch_size=4, max_seq_length=32),
        learning_rate=1e-2,  # keywords override the dataclass
        max_steps=30,
        logging_steps=10,
    )
    assert trainer.args.learning_rate == 1e-2 and trainer.state.global_step == 30
    assert predict(trainer, EXAMPLES, SNLI) == [SNLI.label_id(example) for example in EXAMPLES]

    lengths = [len(tiny_tokenizer(PREMISE, example["sentence2"])["input_ids"]) for example in EXAMPLES]
    assert len(set(lengths)) > 1
    for batch in trainer.get_train_dataloader():
        mask = batch["attention_mask"]
        assert mask.shape[1] == int(mask.sum(dim=1).max())  # padded to the longest in the batch, no further


def test_finetune_refuses_unknown_settings_and_no_examples(tiny_rope_folder, tiny_tokenizer, tmp_path):
    model = load_sequence_classifier(tiny_rope_folder)
    with pytest.raises(TypeError, match="learning_rat"):
        finetune(model, tiny_tokenizer, EXAMPLES, output_dir=tmp_path, learning_rat=1e-3)
    with pytest.raises(ValueError, match="no snli example"):
        finetune(model, tiny_tokenizer, [], output_dir=tmp_path)


def test_kept_head_in_another_label_order_is_mapped_to_the_task_labels(tiny_rope_folder, tiny_tokenizer, tmp_path):
    model = load_sequence_classifier(tiny_rope_folder)
    model.config.id2label = {0: "contradiction", 1: "entailment", 2: "neutral"}
    mapping = output_to_label_map(model, SNLI)
    assert [SNLI.label_names[index] for index in mapping] == ["contradiction", "entailment", "neutral"]
    trainer = build_trainer(model, tiny_tokenizer, FinetuneArguments(), tmp_path)
    raw = predict(trainer, EXAMPLES, SNLI)
    assert predict(trainer, EXAMPLES, SNLI, output_to_label=mapping) == [mapping[index] for index in raw]
    model.config.id2label = {0: "yes", 1: "no", 2: "maybe"}
    with pytest.raises(ValueError, match="not snli's.*drop --skip_training"):
        output_to_label_map(model, SNLI)


def test_folder_that_is_not_a_classifier_is_an_error(tmp_path):
    from transformers import ViTConfig

    folder = tmp_path / "vision-model"
    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(folder)
    with pytest.raises(ValueError, match="vision-model.*not a sequence classifier"):
        load_sequence_classifier(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty.*config.json"):
        load_sequence_classifier(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_sequence_classifier(tmp_path / "nowhere")


def test_loading_says_nothing_about_the_new_head_but_warns_about_missing_encoder_weights(tiny_rope_folder, capfd):
    import warnings

    import safetensors.torch

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fresh head and an unused masked-LM head are expected: no warning
        load_sequence_classifier(tiny_rope_folder, SNLI)
    assert "LOAD REPORT" not in capfd.readouterr().err  # transformers' table is not printed on every load
    weights = safetensors.torch.load_file(tiny_rope_folder / "model.safetensors")
    dropped = next(name for name in weights if "query" in name)
    del weights[dropped]
    safetensors.torch.save_file(weights, tiny_rope_folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.warns(UserWarning, match=r"lacks 1 weight\(s\) the sequence classifier needs, started at random"):
        load_sequence_classifier(tiny_rope_folder, SNLI)

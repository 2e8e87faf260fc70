"""Token classification in hf_posenc.training.finetune: labels on the first sub-token of each word, a token
classifier for any variant and for a stock BERT folder, and a tiny tagging task learnt for real."""

import pytest
from conftest import tiny_config

from hf_posenc.tasks import HeldOut, Task, TaskKind
from hf_posenc.tasks.metrics import token_accuracy_scores
from hf_posenc.training.finetune import (
    IGNORED_LABEL,
    FinetuneArguments,
    encode_examples,
    finetune,
    load_classifier,
    predict,
    references,
    token_labels,
)

# Tag a word by whether it names an animal: learnable from the word alone.
TAGS = ("OTHER", "ANIMAL")
SENTENCES = [
    "the cat sat on the mat",
    "the dog slept by the door",
    "the small dog chased the red ball",
    "a cat is walking along the beach",
]
EXAMPLES = [
    {"words": sentence.split(), "tags": ["ANIMAL" if word in ("cat", "dog") else "OTHER" for word in sentence.split()]}
    for sentence in SENTENCES
]
TAGGING = Task(
    name="animals",
    kind=TaskKind.TOKEN_CLASSIFICATION,
    text_columns=("words",),
    label_column="tags",
    label_names=TAGS,
    loader=lambda split, path: list(EXAMPLES),
    splits=("train", "validation", "test"),
    train_split="train",
    report_split="test",
    selection_split="validation",
    held_out=HeldOut("validation", 0.25),
    metric=token_accuracy_scores,
    main_metric="accuracy",
)


@pytest.fixture()
def tiny_folder(tmp_path, tiny_tokenizer):
    from transformers import AutoModelForMaskedLM

    folder = tmp_path / "tiny-alibi"
    AutoModelForMaskedLM.from_config(tiny_config("alibi", vocab_size=len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def test_labels_go_on_the_first_sub_token_of_each_word(tiny_tokenizer):
    example = {"words": ["the", "elephant", "sat"], "tags": ["OTHER", "ANIMAL", "OTHER"]}
    dataset = encode_examples(tiny_tokenizer, [example], TAGGING, max_length=32, with_labels=True)
    ids = dataset[0]["input_ids"]
    pieces = tiny_tokenizer.convert_ids_to_tokens(ids)
    assert len(pieces) > 5  # [CLS] the + several pieces of the unseen "elephant" + sat [SEP]
    expected = [IGNORED_LABEL, 0, 1] + [IGNORED_LABEL] * (len(ids) - 5) + [0, IGNORED_LABEL]
    assert dataset[0]["labels"] == expected
    assert token_labels([None, 0, 0, 1, None], [7, 8]) == [IGNORED_LABEL, 7, IGNORED_LABEL, 8, IGNORED_LABEL]


@pytest.mark.parametrize("make_bert", [False, True])
def test_a_variant_and_a_stock_bert_load_as_token_classifiers(tmp_path, tiny_folder, make_bert):
    folder = tiny_folder
    if make_bert:
        from transformers import BertConfig, BertModel

        folder = tmp_path / "bert"
        BertModel(
            BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
        ).save_pretrained(folder)
    model = load_classifier(folder, TAGGING)
    assert type(model).__name__.endswith("ForTokenClassification") and model.config.num_labels == 2
    assert model.config.id2label == {0: "OTHER", 1: "ANIMAL"}


def test_a_tiny_tagger_learns_and_predicts_one_label_per_word(tiny_folder, tiny_tokenizer, tmp_path):
    model = load_classifier(tiny_folder, TAGGING)
    trainer = finetune(
        model,
        tiny_tokenizer,
        EXAMPLES * 4,
        output_dir=tmp_path / "trainer",
        task=TAGGING,
        arguments=FinetuneArguments(per_device_train_batch_size=4, max_seq_length=32, learning_rate=1e-2, max_steps=25),
    )
    predicted = predict(trainer, EXAMPLES, TAGGING)
    assert [len(words) for words in predicted] == [len(example["words"]) for example in EXAMPLES]
    assert TAGGING.score(predicted, references(EXAMPLES, TAGGING)) == {"accuracy": 1.0}
    # A word cut off by max_length gets no prediction (-1), which counts as wrong.
    [cut] = predict(trainer, [{"words": ["the"] * 40, "tags": ["OTHER"] * 40}], TAGGING, max_length=8)
    assert cut[:6] == [0] * 6 and cut[6:] == [-1] * 34

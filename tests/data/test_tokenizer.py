"""WordPiece tokenizer training (hf_posenc.data.tokenizer)."""

from __future__ import annotations

import pytest

from hf_posenc import data


@pytest.fixture(scope="module")
def stdlib_documents():
    return list(data.stdlib_documents())


@pytest.fixture(scope="module")
def stdlib_tokenizer(stdlib_documents):
    return data.train_wordpiece_tokenizer(stdlib_documents, vocab_size=1000)


def test_tokenizer_is_a_bert_tokenizer(stdlib_tokenizer):
    from transformers import BertTokenizerFast

    tokenizer = stdlib_tokenizer
    assert isinstance(tokenizer, BertTokenizerFast)
    assert len(tokenizer) == 1000
    assert tokenizer.convert_tokens_to_ids(list(data.SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    assert (tokenizer.pad_token_id, tokenizer.mask_token_id) == (0, 4)
    encoded = tokenizer("The Attribute is raised.", "A second sentence")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
    first_sep = tokens.index("[SEP]")
    assert encoded["token_type_ids"] == [0] * (first_sep + 1) + [1] * (len(tokens) - first_sep - 1)
    assert "attribute" in tokens  # lower-cased by the BERT normaliser
    assert tokenizer.decode(encoded["input_ids"], skip_special_tokens=True).startswith("the attribute is raised")
    assert any(token.startswith("##") for token in tokenizer.tokenize("unbelievably interoperable"))


def test_tokenizer_training_is_deterministic(stdlib_documents, stdlib_tokenizer):
    again = data.train_wordpiece_tokenizer(stdlib_documents, vocab_size=1000)
    assert again.get_vocab() == stdlib_tokenizer.get_vocab()
    cased = data.train_wordpiece_tokenizer(stdlib_documents, vocab_size=1000, lowercase=False)
    assert "The" in cased.tokenize("The object")


def test_tokenizer_save_load_and_fill_mask(stdlib_tokenizer, tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, pipeline

    stdlib_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    sentence = "Special methods are looked up on the type of the object."
    assert loaded(sentence)["input_ids"] == stdlib_tokenizer(sentence)["input_ids"]
    assert loaded.get_vocab() == stdlib_tokenizer.get_vocab()

    config = BertConfig(
        vocab_size=len(loaded),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    fill_mask = pipeline("fill-mask", model=BertForMaskedLM(config), tokenizer=loaded, device="cpu")
    predictions = fill_mask("The object is [MASK] at compile time.", top_k=3)
    assert len(predictions) == 3 and all(p["token"] < len(loaded) for p in predictions)


def test_tokenizer_rejects_empty_input():
    with pytest.raises(ValueError, match="empty"):
        data.train_wordpiece_tokenizer([[], ["   "]])


def test_tokenizer_on_files_equals_training_on_all_documents(stdlib_documents, tmp_path):
    corpus = data.write_documents(stdlib_documents[:40], tmp_path / "corpus.txt")
    on_files = data.train_wordpiece_tokenizer_on_files(corpus, vocab_size=600)
    in_memory = data.train_wordpiece_tokenizer(data.read_documents(corpus), vocab_size=600)
    assert on_files.get_vocab() == in_memory.get_vocab()


def test_tokenizer_sample_is_bounded_even_and_deterministic(tmp_path):
    corpus = data.write_documents([[f"line {index}" for index in range(100)]] * 3, tmp_path / "corpus.txt")
    sample = data.sample_lines(corpus, 30)
    assert sample == data.sample_lines(corpus, 30)
    assert len(sample) == 30
    assert sample[:3] == ["line 0", "line 10", "line 20"] and sample[-1] == "line 90"  # the last document too
    assert data.sample_lines(corpus, 1000) == [line for document in data.read_documents(corpus) for line in document]
    limited = data.train_wordpiece_tokenizer_on_files(corpus, vocab_size=50, min_frequency=1, sample=30)
    assert limited.get_vocab() == data.train_wordpiece_tokenizer([sample], vocab_size=50, min_frequency=1).get_vocab()
    with pytest.raises(ValueError, match="at least one line"):
        data.sample_lines(corpus, 0)

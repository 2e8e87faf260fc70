"""Training jobs as library functions with typed arguments and results.

- `pretrain(...)` (module `pretrain`): masked-language-model pretraining of one variant, returning a
  `hf_posenc.results.PretrainResult`; its arguments are the dataclasses of `arguments`, built from keyword
  arguments with `pretrain_arguments(**options)` or from flags with `parse_pretrain_arguments(argv)`;
- `arguments`: `ModelArguments`, `VariantArguments`, `DataArguments`, `RunArguments`, `SIZE_PRESETS`,
  `TRAINING_DEFAULTS`;
- `model_config`: the model config of a run (size preset, variant flags, `--config_overrides`);
- `corpus`: the run's text, tokenizer and packed blocks (`load_pretraining_data`);
- `checks`: what is refused before downloading and before training;
- `finetune`: fine-tuning and prediction of a classifier on a downstream task (`FinetuneArguments`, `finetune`,
  `predict`, `load_sequence_classifier`).
"""

from .arguments import (
    SIZE_PRESETS,
    TRAINING_DEFAULTS,
    DataArguments,
    ModelArguments,
    PretrainArguments,
    RunArguments,
    VariantArguments,
    parse_pretrain_arguments,
    pretrain_argument_parser,
    pretrain_arguments,
    training_defaults,
)
from .corpus import PretrainingData, load_pretraining_data
from .finetune import FinetuneArguments, finetune, load_sequence_classifier, predict
from .model_config import build_config, parse_config_overrides
from .pretrain import PretrainingTrainer, pretrain

__all__ = [
    "SIZE_PRESETS",
    "TRAINING_DEFAULTS",
    "DataArguments",
    "FinetuneArguments",
    "ModelArguments",
    "PretrainArguments",
    "PretrainingData",
    "PretrainingTrainer",
    "RunArguments",
    "VariantArguments",
    "build_config",
    "finetune",
    "load_sequence_classifier",
    "load_pretraining_data",
    "parse_config_overrides",
    "parse_pretrain_arguments",
    "predict",
    "pretrain",
    "pretrain_argument_parser",
    "pretrain_arguments",
    "training_defaults",
]

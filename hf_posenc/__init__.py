"""hf_posenc: positional encodings for BERT-style encoders on the Hugging Face stack.

Importing the package registers every variant with AutoConfig and with the Auto class of each head in `HEADS`
(AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoModelForTokenClassification) under the
model type `posenc_<name>`.
"""

import transformers
from transformers import AutoConfig

from . import modeling_posenc
from .configuration_posenc import HEADS, VARIANTS, PosEncConfig
from .modeling_posenc import (
    PosEncForMaskedLM,
    PosEncForSequenceClassification,
    PosEncForTokenClassification,
    PosEncModel,
)
from .positional import ENCODINGS, PositionalEncoding

__version__ = "0.1.0"

__all__ = [
    "ENCODINGS",
    "HEADS",
    "VARIANTS",
    "PosEncConfig",
    "PosEncForMaskedLM",
    "PosEncForSequenceClassification",
    "PosEncForTokenClassification",
    "PosEncModel",
    "PositionalEncoding",
    "create_config",
    "model_classes",
]


def model_classes(variant: str) -> dict[str, type]:
    """The Auto class name -> model class of one variant, e.g. {"AutoModelForMaskedLM": PosEncRopeForMaskedLM}."""
    prefix = config_class_for(variant).__name__.removesuffix("Config")
    return {auto_class: getattr(modeling_posenc, prefix + suffix) for suffix, auto_class in HEADS.items()}


def config_class_for(variant: str) -> type[PosEncConfig]:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(
            f"Unknown positional-encoding variant {variant!r}. Known variants: {', '.join(VARIANTS)}."
        ) from None


def create_config(variant: str, **overrides) -> PosEncConfig:
    """The config of `variant` (a short name such as "rope") with any field overridden."""
    return config_class_for(variant)(**overrides)


def _register_with_auto_classes() -> None:
    for variant, config_class in VARIANTS.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        for auto_name, model_class in model_classes(variant).items():
            getattr(transformers, auto_name).register(config_class, model_class, exist_ok=True)


_register_with_auto_classes()

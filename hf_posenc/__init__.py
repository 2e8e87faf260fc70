"""hf_posenc: positional encodings for BERT-style encoders on the Hugging Face stack.

Importing the package registers every variant with AutoConfig, AutoModel, AutoModelForMaskedLM and
AutoModelForSequenceClassification under the model type `posenc_<name>`.
"""

from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

from . import modeling_posenc
from .configuration_posenc import VARIANTS, PosEncConfig
from .modeling_posenc import PosEncForMaskedLM, PosEncForSequenceClassification, PosEncModel
from .positional import ENCODINGS, PositionalEncoding

__version__ = "0.1.0"

__all__ = [
    "ENCODINGS",
    "VARIANTS",
    "PosEncConfig",
    "PosEncForMaskedLM",
    "PosEncForSequenceClassification",
    "PosEncModel",
    "PositionalEncoding",
    "create_config",
    "model_classes",
]


def model_classes(variant: str) -> dict[str, type]:
    """The Auto class name -> model class of one variant, e.g. {"AutoModelForMaskedLM": PosEncRopeForMaskedLM}."""
    config_class = config_class_for(variant)
    return {
        auto_name: getattr(modeling_posenc, path.split(".")[1])
        for auto_name, path in config_class.hub_auto_map().items()
        if auto_name != "AutoConfig"
    }


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
    auto_classes = {
        "AutoModel": AutoModel,
        "AutoModelForMaskedLM": AutoModelForMaskedLM,
        "AutoModelForSequenceClassification": AutoModelForSequenceClassification,
    }
    for variant, config_class in VARIANTS.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        for auto_name, model_class in model_classes(variant).items():
            auto_classes[auto_name].register(config_class, model_class, exist_ok=True)


_register_with_auto_classes()

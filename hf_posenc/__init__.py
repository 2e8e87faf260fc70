"""hf_posenc: positional encodings for BERT-style encoders on the Hugging Face stack.

Importing the package registers every variant with AutoConfig and with the Auto class of each head in `HEADS`
(AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoModelForTokenClassification) under the
model type `posenc_<name>`. `register_encoding` adds your own encoding the same way (see hf_posenc/plugins.py and
"Add your own encoding" in docs/variants.md); the modules named by the environment variable `HF_POSENC_ENCODINGS`
are imported last, so that every command and every process started from one knows their variants.
"""

import sys

from . import modeling_posenc
from .configuration_posenc import HEADS, VARIANTS, PosEncConfig
from .modeling_posenc import (
    PosEncForMaskedLM,
    PosEncForSequenceClassification,
    PosEncForTokenClassification,
    PosEncModel,
)
from .plugins import (
    import_encoding_modules,
    import_modules_from_environment,
    register_encoding,
    register_with_auto_classes,
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
    "import_encoding_modules",
    "model_classes",
    "register_encoding",
]


def model_classes(variant: str) -> dict[str, type]:
    """The Auto class name -> model class of one variant, e.g. {"AutoModelForMaskedLM": PosEncRopeForMaskedLM}."""
    config_class = config_class_for(variant)
    prefix = config_class.__name__.removesuffix("Config")
    # The built-in classes are in modeling_posenc; those of an encoding of your own, next to it in its module.
    module = sys.modules[getattr(config_class, "model_classes_module", modeling_posenc.__name__)]
    return {auto_class: getattr(module, prefix + suffix) for suffix, auto_class in HEADS.items()}


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
        register_with_auto_classes(config_class, model_classes(variant))


_register_with_auto_classes()

# Last: those modules import `register_encoding` from this package, which must be complete but for them.
import_modules_from_environment()

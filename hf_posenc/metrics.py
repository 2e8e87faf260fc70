"""Moved to `hf_posenc.analysis` (metrics and model_attention); kept so `from hf_posenc import metrics` works."""

from .analysis import *  # noqa: F401,F403
from .analysis import __all__  # noqa: F401

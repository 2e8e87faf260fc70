"""Locality and symmetry of attention (Chen, Varoquaux and Suchanek, Findings of EMNLP 2023).

- `metrics`: `locality`, `symmetry`, `summarize` and `validate_attention` on attention tensors;
- `attention_input`: what the metrics accept, checked and flattened before they measure it;
- `kernel`: builds, checks and calls the fused C kernel (`attention_stats.c`) behind the metrics on CPU;
- `model_attention`: attention read out of models, on text (`summarize_model`) or from position alone
  (`position_attention`);
- `callback`: `LocalitySymmetryCallback`, the metrics while a Trainer trains (imported on its own: it needs the
  Trainer);
- `extrapolation`: masked-LM loss and attention at lengths a model was not trained on;
- `log_keys`: the names the callback logs under, which the plots read back;
- `plots`: PNGs of the metrics (matplotlib, an optional extra);
- `folder_report`: the `hf-posenc analyze` job, a saved model folder measured on sentences (no code in the folder
  runs unless trusted).
"""

from .metrics import (
    DEFAULT_MAX_DISTANCE,
    DEFAULT_SYMMETRY_TOLERANCE,
    SUMMARY_METRICS,
    SYMMETRY_METHODS,
    locality,
    summarize,
    symmetry,
    validate_attention,
)
from .model_attention import model_attentions, position_attention, summarize_model

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "DEFAULT_SYMMETRY_TOLERANCE",
    "SUMMARY_METRICS",
    "SYMMETRY_METHODS",
    "locality",
    "model_attentions",
    "position_attention",
    "summarize",
    "summarize_model",
    "symmetry",
    "validate_attention",
]

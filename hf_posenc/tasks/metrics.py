"""The official GLUE metrics, computed locally and used through `evaluate`'s API.

``evaluate.load("glue", ...)`` downloads its script from the Hugging Face Hub; these are `evaluate.Metric`s built
here from scipy and scikit-learn, so they work offline and answer the same ``compute``/``add_batch`` calls:

- `matthews_correlation_scores`: Matthews correlation (CoLA), 0 when a row or column of the confusion matrix is
  empty (a model that answers one class), as scikit-learn defines it;
- `f1_accuracy_scores`: F1 of the positive class (label 1) and accuracy (MRPC, QQP);
- `pearson_spearman_scores`: Pearson and Spearman correlations of real-valued predictions (STS-B);
- `token_accuracy_scores`: accuracy over the words of token-classification examples (a list of labels each).

Each ``*_scores(predictions, references)`` returns a dict of named scores, the shape `Task.metric` has.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache

from .scoring import accuracy_scores

__all__ = [
    "f1_accuracy_scores",
    "local_metric",
    "matthews_correlation_scores",
    "pearson_spearman_scores",
    "token_accuracy_scores",
]


@cache
def _metric_class(name: str, value_type: str, description: str, compute: Callable[[list, list], dict]):
    """An `evaluate.Metric` subclass whose ``_compute`` is ``compute`` (built on first use: `evaluate` and
    `datasets` are slow imports)."""
    import datasets
    import evaluate

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=description,
            citation="",
            inputs_description=f"predictions (list of {value_type}); references (list of {value_type}).",
            features=datasets.Features(
                {"predictions": datasets.Value(value_type), "references": datasets.Value(value_type)}
            ),
        )

    def _compute(self, predictions=None, references=None) -> dict[str, float]:
        if len(predictions) == 0:
            raise ValueError(f"{name} of zero predictions is undefined; pass at least one prediction")
        return compute(list(predictions), list(references))

    return type(name, (evaluate.Metric,), {"_info": _info, "_compute": _compute, "__doc__": description})


def local_metric(name: str, value_type: str, description: str, compute: Callable[[list, list], dict]):
    """A fresh in-memory `evaluate.Metric` named ``name`` over values of ``value_type`` ("int64", "float64") that
    returns ``compute(predictions, references)``."""
    return _metric_class(name, value_type, description, compute)(keep_in_memory=True)


def _matthews(predictions: list, references: list) -> dict[str, float]:
    from sklearn.metrics import matthews_corrcoef

    return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}


def _f1_accuracy(predictions: list, references: list) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "f1": float(f1_score(references, predictions, pos_label=1, zero_division=0.0)),
        "accuracy": float(accuracy_score(references, predictions)),
    }


def _pearson_spearman(predictions: list, references: list) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    if len(predictions) < 2 or len(set(predictions)) < 2 or len(set(references)) < 2:
        # A correlation with a constant is undefined (scipy warns and returns NaN); say so with NaN directly.
        return {"pearson": math.nan, "spearmanr": math.nan}
    return {
        "pearson": float(pearsonr(predictions, references)[0]),
        "spearmanr": float(spearmanr(predictions, references)[0]),
    }


def matthews_correlation_scores(predictions: Sequence[int], references: Sequence[int]) -> dict[str, float]:
    """``{"matthews_correlation": ...}`` of class ids (CoLA's metric), through `evaluate`'s API."""
    return local_metric(
        "LocalMatthewsCorrelation",
        "int64",
        "Matthews correlation coefficient of predicted against gold class ids (scikit-learn).",
        _matthews,
    ).compute(predictions=list(predictions), references=list(references))


def f1_accuracy_scores(predictions: Sequence[int], references: Sequence[int]) -> dict[str, float]:
    """``{"f1": ..., "accuracy": ...}``: F1 of class 1 and accuracy (MRPC's and QQP's metrics)."""
    return local_metric(
        "LocalF1Accuracy",
        "int64",
        "F1 of the positive class (label 1) and accuracy (scikit-learn).",
        _f1_accuracy,
    ).compute(predictions=list(predictions), references=list(references))


def pearson_spearman_scores(predictions: Sequence[float], references: Sequence[float]) -> dict[str, float]:
    """``{"pearson": ..., "spearmanr": ...}`` of real-valued scores (STS-B's metrics; NaN for a constant input)."""
    return local_metric(
        "LocalPearsonSpearman",
        "float64",
        "Pearson and Spearman correlations of predicted against gold scores (scipy).",
        _pearson_spearman,
    ).compute(predictions=[float(value) for value in predictions], references=[float(value) for value in references])


def token_accuracy_scores(predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]]) -> dict:
    """``{"accuracy": ...}`` over every word of token-classification examples (one list of label ids each)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted examples for {len(references)} references")
    flat_predictions, flat_references = [], []
    for index, (predicted, gold) in enumerate(zip(predictions, references)):
        if len(predicted) != len(gold):
            raise ValueError(f"example {index}: {len(predicted)} predicted labels for {len(gold)} words")
        flat_predictions.extend(predicted)
        flat_references.extend(gold)
    return accuracy_scores(flat_predictions, flat_references)

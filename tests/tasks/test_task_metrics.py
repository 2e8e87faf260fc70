"""The GLUE metrics computed locally (hf_posenc.tasks.metrics), each against a hand computation."""

import math

import pytest

from hf_posenc.tasks.metrics import (
    f1_accuracy_scores,
    local_metric,
    matthews_correlation_scores,
    pearson_spearman_scores,
    token_accuracy_scores,
)


def test_matthews_correlation_matches_the_confusion_matrix_by_hand():
    # tp=3, tn=2, fp=1, fn=1: MCC = (3*2 - 1*1) / sqrt((3+1)(3+1)(2+1)(2+1)) = 5/12.
    references = [1, 1, 1, 1, 0, 0, 0]
    predictions = [1, 1, 1, 0, 0, 0, 1]
    assert matthews_correlation_scores(predictions, references) == {"matthews_correlation": pytest.approx(5 / 12)}
    # Perfectly wrong is -1, not 0 or 1 (the seed repository's bug made the sign and scale wrong).
    assert matthews_correlation_scores([0, 0, 1], [1, 1, 0])["matthews_correlation"] == pytest.approx(-1.0)


def test_matthews_correlation_of_a_one_class_answer_is_zero():
    # A model that always answers "acceptable": a column of the confusion matrix is empty, the formula is 0/0.
    assert matthews_correlation_scores([1, 1, 1, 1], [1, 0, 1, 0]) == {"matthews_correlation": 0.0}


def test_f1_of_the_positive_class_and_accuracy_by_hand():
    # tp=2, fp=1, fn=1, tn=1: precision = recall = 2/3, F1 = 2/3; accuracy = 3/5.
    scores = f1_accuracy_scores([1, 1, 1, 0, 0], [1, 1, 0, 1, 0])
    assert scores == {"f1": pytest.approx(2 / 3), "accuracy": pytest.approx(3 / 5)}
    assert f1_accuracy_scores([0, 0], [1, 0])["f1"] == 0.0  # no positive prediction: F1 0, no warning as NaN


def _pearson(xs, ys):
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    return covariance / math.sqrt(sum((x - mean_x) ** 2 for x in xs) * sum((y - mean_y) ** 2 for y in ys))


def test_pearson_and_spearman_follow_their_definitions():
    predictions = [0.5, 2.0, 1.0, 4.5, 3.0]
    references = [1.0, 1.5, 2.5, 5.0, 3.2]
    ranks_predictions = [1, 3, 2, 5, 4]  # Spearman is Pearson of the ranks (no ties here)
    ranks_references = [1, 2, 3, 5, 4]
    scores = pearson_spearman_scores(predictions, references)
    assert scores["pearson"] == pytest.approx(_pearson(predictions, references))
    assert scores["spearmanr"] == pytest.approx(_pearson(ranks_predictions, ranks_references))
    assert math.isnan(pearson_spearman_scores([2.0, 2.0, 2.0], references[:3])["pearson"])  # constant: undefined


def test_token_accuracy_counts_words_and_refuses_misaligned_examples():
    assert token_accuracy_scores([[1, 2], [3, 4, 5]], [[1, 0], [3, 4, 0]]) == {"accuracy": pytest.approx(3 / 5)}
    with pytest.raises(ValueError, match="example 1: 2 predicted labels for 3 words"):
        token_accuracy_scores([[1], [1, 2]], [[1], [1, 2, 3]])


def test_metrics_are_evaluate_metrics_with_add_batch():
    import evaluate

    metric = local_metric("Doubled", "int64", "twice the prediction count", lambda p, r: {"count": 2 * len(p)})
    assert isinstance(metric, evaluate.Metric)
    metric.add_batch(predictions=[1, 0], references=[1, 1])
    metric.add_batch(predictions=[1], references=[0])
    assert metric.compute() == {"count": 6}

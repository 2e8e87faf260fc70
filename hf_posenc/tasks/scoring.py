"""Scoring a classifier on the SNLI test set and the word-order probes, and the paper's table.

Accuracy goes through the `evaluate` library's API (an `evaluate.Metric` built locally, since
``evaluate.load("accuracy")`` downloads its script from the Hub).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..data.snli import SNLI_LABELS
from ..readings import NOT_ABOVE_CHANCE, chance_verdict, majority_label
from .probes import PROBE_NAMES, STILL_ENTAILMENT, pair_key

__all__ = [
    "AT_CHANCE_CELL",
    "accuracy",
    "accuracy_scores",
    "chance_reading",
    "format_table",
    "probe_accuracy_metric",
    "score_probes",
]

# What the table shows instead of the deltas of a model whose SNLI accuracy is not above chance.
AT_CHANCE_CELL = "n/a (model at chance)"


def _accuracy_metric_class():
    """Build the `evaluate.Metric` subclass on first use, so that building probes does not import
    `evaluate` and `datasets` (slow imports that the construction code does not need)."""
    import datasets
    import evaluate

    class ProbeAccuracy(evaluate.Metric):
        """Accuracy, the fraction of predictions equal to their reference.

        A local stand-in for ``evaluate.load("accuracy")``, which downloads its script from the Hugging
        Face Hub; this one works offline and is used through the same ``compute``/``add_batch`` API.
        """

        def _info(self) -> evaluate.MetricInfo:
            return evaluate.MetricInfo(
                description="Accuracy: the fraction of predictions equal to their reference.",
                citation="",
                inputs_description=(
                    "predictions (list of int): predicted class ids; references (list of int): gold class ids."
                ),
                features=datasets.Features(
                    {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
                ),
            )

        def _compute(self, predictions=None, references=None) -> dict[str, float]:
            if len(predictions) == 0:
                raise ValueError("accuracy of zero predictions is undefined; pass at least one prediction")
            correct = sum(int(predicted == gold) for predicted, gold in zip(predictions, references))
            return {"accuracy": correct / len(predictions)}

    return ProbeAccuracy


def probe_accuracy_metric():
    """A fresh, in-memory accuracy metric (an `evaluate.Metric`): ``metric.compute(predictions=, references=)``."""
    return _accuracy_metric_class()(keep_in_memory=True)


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Accuracy through `evaluate`'s API (NaN for no predictions, e.g. a probe that selected no pair)."""
    if len(predictions) == 0:
        return math.nan
    return probe_accuracy_metric().compute(predictions=list(predictions), references=list(references))["accuracy"]


def accuracy_scores(predictions: Sequence[int], references: Sequence[int]) -> dict[str, float]:
    """``{"accuracy": ...}``: the metric of a classification task (see `hf_posenc.tasks.Task.metric`)."""
    return {"accuracy": accuracy(predictions, references)}


def score_probes(
    test_pairs: Sequence[dict],
    original_predictions: Sequence[int],
    probes: dict[str, list[dict]],
    probe_predictions: dict[str, Sequence[int]],
) -> dict[str, Any]:
    """Turn predicted class ids (indices into `SNLI_LABELS`) into the probe results.

    ``original_predictions[i]`` is the prediction for ``test_pairs[i]``; ``probe_predictions[name][i]`` for
    ``probes[name][i]``. Shuffled pairs keep their label. A role-swapped pair is not entailed, so a
    prediction is right when it is anything but "entailment".

    Returns three dicts:

    - ``"probes"``: accuracies as fractions in [0, 1], in the form `hf_posenc.hub` puts on a model card:
      ``{"original", "shuffle-3", ..., "shuffle-6", "random", "role-swap", "still_entailment"}``, where
      ``still_entailment`` is the fraction of role-swapped pairs still answered "entailment"
      (= 1 - role-swap accuracy).
    - ``"deltas"``: each probe's accuracy minus the original accuracy, in points (the paper's Δ columns).
    - ``"details"``: per probe, the number of pairs and ``accuracy_before``, the accuracy on the same pairs
      unprobed (for role-swap: how often those entailment pairs were answered "entailment" before the
      swap), plus the role swap's coverage of the entailment pairs.
    """
    entailment = SNLI_LABELS.index("entailment")
    gold_ids = [SNLI_LABELS.index(pair["gold_label"]) for pair in test_pairs]
    original_by_pair = {
        pair_key(pair, index): (predicted, gold)
        for index, (pair, predicted, gold) in enumerate(zip(test_pairs, original_predictions, gold_ids))
    }
    original_accuracy = accuracy(original_predictions, gold_ids)
    fractions: dict[str, float] = {"original": original_accuracy}
    deltas: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {"original": {"pairs": len(test_pairs)}}

    for name in PROBE_NAMES:
        records = probes.get(name, [])
        predicted = list(probe_predictions.get(name, []))
        if len(predicted) != len(records):
            raise ValueError(f"probe {name}: {len(records)} pairs but {len(predicted)} predictions")
        unknown = [record["pairID"] for record in records if record["pairID"] not in original_by_pair]
        if unknown:
            raise ValueError(
                f"probe {name} holds pair(s) {', '.join(map(str, unknown[:3]))} that are not among the test pairs; "
                "score probes built from these test pairs (build_probes(test_pairs))."
            )
        before = [original_by_pair[record["pairID"]] for record in records]
        if name == "role-swap":
            # Binary view: 1 = answered "not entailed" (right for a swapped pair), 0 = "entailment".
            probe_accuracy = accuracy([int(p != entailment) for p in predicted], [1] * len(records))
            accuracy_before = accuracy([int(p == entailment) for p, _ in before], [1] * len(records))
            fractions["role-swap"] = probe_accuracy
            fractions[STILL_ENTAILMENT] = 1 - probe_accuracy
            entailment_pairs = sum(1 for pair in test_pairs if pair["gold_label"] == "entailment")
            details[name] = {
                "pairs": len(records),
                "entailment_pairs": entailment_pairs,
                "coverage": len(records) / entailment_pairs if entailment_pairs else math.nan,
                "accuracy_before": accuracy_before,
            }
        else:
            probe_accuracy = accuracy(predicted, [SNLI_LABELS.index(record["gold_label"]) for record in records])
            fractions[name] = probe_accuracy
            accuracy_before = accuracy([p for p, _ in before], [g for _, g in before])
            details[name] = {"pairs": len(records), "accuracy_before": accuracy_before}
        deltas[name] = 100 * (probe_accuracy - original_accuracy)
    return {"probes": fractions, "deltas": deltas, "details": details}


def chance_reading(
    test_pairs: Sequence[dict], original_accuracy: float | None, seed_std: float | None = None
) -> dict[str, Any]:
    """The chance level of the SNLI accuracy on these test pairs (the accuracy of always answering their most
    frequent gold label, `readings.majority_label`) and whether `original_accuracy` beats it by more than its noise
    (`readings.chance_verdict` with n = the number of test pairs; `seed_std` when the accuracy is a mean over
    seeds). Returns the verdict dict plus ``majority_label`` and ``pairs``."""
    labels = [pair["gold_label"] for pair in test_pairs]
    if not labels:
        return {**chance_verdict(original_accuracy, None), "majority_label": None, "pairs": 0}
    majority = majority_label(labels)
    chance = accuracy([SNLI_LABELS.index(majority)] * len(labels), [SNLI_LABELS.index(label) for label in labels])
    reading = chance_verdict(original_accuracy, chance, seed_std=seed_std, n=len(labels))
    return {**reading, "majority_label": majority, "pairs": len(labels)}


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """The paper's layout, one row per model: Original accuracy (%), then Shuffle-3..6, Random and Role-swap
    as signed Δ points against Original, the still-entailment rate (%), then locality and symmetry.

    ``rows`` maps a model name to a `ProbeResult` or a dict with its keys "probes", "deltas", "locality" and
    "symmetry" (as `score_probes` returns them, plus the attention summary). A row whose "verdict" is "not above
    chance" shows `AT_CHANCE_CELL` instead of its deltas: the model learned nothing to lose.
    """

    def cell(value: Any, signed: bool = False, decimals: int = 1) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"

    titles = ["Original"] + [name.capitalize() for name in PROBE_NAMES] + ["Still-ent.", "Locality", "Symmetry"]
    header = ["Model"] + titles
    body = []
    for model_name, result in rows.items():
        if not isinstance(result, dict):
            result = result.to_dict()
        probes, deltas = result["probes"], result["deltas"]
        cells = [model_name, cell(100 * probes["original"])]
        if result.get("verdict") == NOT_ABOVE_CHANCE:
            cells += [AT_CHANCE_CELL for _ in PROBE_NAMES]
        else:
            cells += [cell(deltas.get(name), signed=True) for name in PROBE_NAMES]
        still = probes.get(STILL_ENTAILMENT)
        cells.append(cell(None if still is None else 100 * still))
        cells += [cell(result.get("locality"), decimals=3), cell(result.get("symmetry"), decimals=3)]
        body.append(cells)
    widths = [max(len(row[column]) for row in [header] + body) for column in range(len(header))]
    lines = [
        "  ".join(
            text.ljust(width) if column == 0 else text.rjust(width)
            for column, (text, width) in enumerate(zip(row, widths))
        )
        for row in [header] + body
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)

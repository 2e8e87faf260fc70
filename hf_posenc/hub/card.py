"""The model card of a trained hf_posenc variant: `render_card(config, results)` and the template it fills.

The card says what the variant is (paper, route, symmetric by construction), its configuration, data and steps,
tokenizer, evaluation loss and perplexity, the locality and symmetry of its attention (overall, per layer, curves),
the word-order probe results, the downstream (fine-tuning) scores, a usage snippet and the citation of the locality/symmetry paper; its metadata carries
the numbers as `model-index` results.

Every string a user supplies (model name, dataset name, repository id...) is escaped for the place it goes: the
metadata is written by a YAML dumper (`ModelCardData.to_yaml`), Markdown text by `markdown_text`/`code_span`, and
the usage snippet gets a Python string literal.
"""

from __future__ import annotations

import html
import inspect
import json
import math
import os
import re
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..analysis.metrics import SUMMARY_METRICS
from ..readings import NOT_ABOVE_CHANCE
from ..tasks.probes import STILL_ENTAILMENT
from ..tasks.scoring import AT_CHANCE_CELL
from .card_results import PROBE_ORDER, card_context, index_results, normalize_results
from .downstream import task_dataset, task_type
from .repo_id import check_repo_id

TEMPLATE_NAME = "posenc_model_card.md.jinja"
DEFAULT_PROBE_DATASET = "stanfordnlp/snli"
# Written into the usage snippet when the repository id is not known yet; `push` fills in the real id.
REPO_ID_PLACEHOLDER = "<your-hub-id>"
CARD_TAGS = ("custom_code", "positional-encoding", "fill-mask")

PAPER_BIBTEX = """@inproceedings{chen2023locality,
  title     = {The Locality and Symmetry of Positional Encodings},
  author    = {Chen, Lihu and Varoquaux, Ga{\\"e}l and Suchanek, Fabian M.},
  booktitle = {Findings of the Association for Computational Linguistics: EMNLP 2023},
  year      = {2023},
  address   = {Singapore},
  publisher = {Association for Computational Linguistics},
  eprint    = {2310.12864},
  archivePrefix = {arXiv},
  url       = {https://arxiv.org/abs/2310.12864}
}"""

ROUTE_DESCRIPTIONS = {
    "none": "no positional information at all",
    "embed": "a position vector added to each token embedding",
    "rotate": "queries and keys rotated by a position-dependent angle",
    "bias": "an additive attention bias computed from the positions of query and key (and, for a gated bias, from "
    "the tokens between them)",
    "score": "extra attention scores between token content and relative-position embeddings",
}

# Local data files are described on the card but are not Hub datasets for its metadata.
DATA_FILE_SUFFIXES = (".txt", ".text", ".json", ".jsonl", ".csv", ".tsv", ".parquet", ".arrow", ".gz", ".bz2", ".xz")

METRIC_NAMES = {
    "eval_loss": ("loss", "Eval loss"),
    "perplexity": ("perplexity", "Perplexity"),
    "locality": ("locality", "Locality"),
    "symmetry": ("symmetry", "Symmetry (reference)"),
    "symmetry_scale_aware": ("symmetry_scale_aware", "Symmetry (scale-aware)"),
}


def render_card(
    config,
    results: Mapping[str, Any] | None = None,
    *,
    repo_id: str | None = None,
    model_name: str | None = None,
    license: str | None = None,
    language: str | list[str] | None = None,
    tags: list[str] | None = None,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """The model card of a trained hf_posenc variant, as a `huggingface_hub.ModelCard`.

    `config` is the model's config (it must have a `variant` known to `hf_posenc.positional.ENCODINGS`);
    `results` holds the keys of `hf_posenc.hub.CardResults` (every key optional, unknown keys rejected).
    `repo_id` ('namespace/name', checked by the Hub's rules) goes into the usage snippet (without it, a placeholder
    that `push` fills in); `model_name` is the card's title and the model-index name (default: the repository name,
    else `posenc-<variant>`); `license`, `language` and extra `tags` go into the metadata. `template_path` replaces
    the bundled Jinja template.
    """
    results = normalize_results(results)
    if repo_id is not None:
        check_repo_id(repo_id, require_namespace=True)
    variant = getattr(config, "variant", None)
    encoding_class = _encoding_class(variant)
    if results.get("variant", variant) != variant:
        raise ValueError(
            f"results['variant'] is {results['variant']!r} but the config is of variant {variant!r}: the results "
            "belong to another model."
        )
    model_name = model_name or (repo_id.split("/")[-1] if repo_id else f"posenc-{variant}")
    encoder_rows, encoding_rows = _config_rows(config)

    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="fill-mask",
        license=license or results.get("license"),
        language=language,
        tags=[*CARD_TAGS[:2], f"posenc_{variant}", *CARD_TAGS[2:], *(tags or [])],
        datasets=_hub_datasets(results) or None,
        model_name=model_name,
        eval_results=_eval_results(index_results(results)) or None,
    )
    dataset_label = results.get("dataset_name") or results.get("dataset")
    context = {
        "card_data": card_data.to_yaml(),
        "model_name": markdown_text(model_name),
        "usage_model_id_literal": python_string(repo_id or REPO_ID_PLACEHOLDER),
        "variant": variant,
        "model_type": getattr(config, "model_type", f"posenc_{variant}"),
        "paper": encoding_class.paper or "(none)",
        "route": encoding_class.route,
        "route_description": ROUTE_DESCRIPTIONS.get(encoding_class.route, "see the encoding's documentation"),
        "symmetric": _symmetric_by_construction(encoding_class, config),
        "extrapolates": bool(getattr(encoding_class, "extrapolates", True)),
        "encoding_description": _docstring_markdown(" ".join(inspect.cleandoc(encoding_class.__doc__ or "").split())),
        "config_rows": encoder_rows,
        "encoding_rows": encoding_rows,
        "training_rows": _training_rows(results),
        "dataset_label": markdown_text(dataset_label) if dataset_label else None,
        "evaluation_rows": [
            (METRIC_NAMES[key][1], _format(results[key], 4 if key == "eval_loss" else 2))
            for key in ("eval_loss", "perplexity")
            if key in results
        ],
        "attention_rows": [
            (METRIC_NAMES[key][1], _format(results[key], 4)) for key in SUMMARY_METRICS if key in results
        ],
        "per_layer_rows": [
            {"layer": row["layer"], **{key: _format(row.get(key), 4) for key in SUMMARY_METRICS}}
            for row in results.get("per_layer", [])
        ],
        "measured_on": markdown_text(results["measured_on"]) if "measured_on" in results else None,
        "plots": [
            {"caption": markdown_text(_plot_caption(path)), "path": f"plots/{quote(Path(path).name)}"}
            for path in results.get("plots", [])
        ],
        "probe_rows": _probe_rows(results.get("probes", {}), results.get("probe_verdict")),
        "probe_chance": _percent(results["probe_chance"]) if "probe_chance" in results else None,
        "probe_verdict": markdown_text(results["probe_verdict"]) if "probe_verdict" in results else None,
        "probe_at_chance": results.get("probe_verdict") == NOT_ABOVE_CHANCE,
        "probe_dataset": markdown_text(results.get("probe_dataset", DEFAULT_PROBE_DATASET)),
        "still_entailment": _percent(results["probes"][STILL_ENTAILMENT])
        if STILL_ENTAILMENT in results.get("probes", {})
        else None,
        "finetune_rows": _finetune_rows(results.get("finetune", {})),
        "bibtex": PAPER_BIBTEX,
        **card_context(results),
    }
    return ModelCard(_render_template(template_path, context))


# ------------------------------------------------------------------------------------------------ escaping
# Characters that start Markdown (or Hub-rendered KaTeX) formatting inside a line; `&`, `<`, `>` become HTML entities.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")


def markdown_text(text: str) -> str:
    """`text` as literal Markdown on one line: no emphasis, links, HTML, math or table cells can come out of it."""
    one_line = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def code_span(text: str) -> str:
    """`text` as an inline code span on one line, also inside a table row (`|` escaped, as GFM tables require)."""
    one_line = " ".join(str(text).split()).replace("|", "\\|")
    longest_run = max((len(run) for run in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest_run + 1)
    padding = " " if longest_run else ""
    return f"{fence}{padding}{one_line}{padding}{fence}"


def python_string(text: str) -> str:
    """A Python string literal of `text` (double-quoted, ASCII) that a reader can paste into code as is."""
    return json.dumps(str(text), ensure_ascii=True)


def _docstring_markdown(text: str) -> str:
    """Our own docstrings as a Markdown paragraph: formulas such as `-s*w*d^2` must not turn into italics. Code
    spans (between backticks) are kept as they are."""
    segments = text.split("`")
    return "`".join(segment if index % 2 else segment.replace("*", "\\*") for index, segment in enumerate(segments))


# ------------------------------------------------------------------------------------------------ card parts
def _encoding_class(variant):
    from ..positional import ENCODINGS

    if variant not in ENCODINGS:
        raise ValueError(
            f"The config's variant {variant!r} is not an hf_posenc positional encoding (known: "
            f"{', '.join(ENCODINGS)}). render_card and export expect the config of an hf_posenc model."
        )
    return ENCODINGS[variant]


def _symmetric_by_construction(encoding_class, config) -> bool:
    """Some encodings are symmetric only for some settings (ALiBi with shared fixed slopes, attenuated with s = 1
    and fixed values): the instance built from the config knows; the class attribute is the default."""
    try:
        return bool(encoding_class(config).symmetric)
    except Exception:
        return bool(encoding_class.symmetric)


def _config_rows(config) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The model's own hyper-parameters, leaving out transformers' generic config fields, split into the shared
    encoder's (BERT's) and the positional encoding's."""
    from transformers import PreTrainedConfig

    from ..configuration_posenc import PosEncConfig

    # trained_max_length is shown as the training's sequence length, not as a hyper-parameter.
    generic = set(PreTrainedConfig().to_dict()) | {
        "auto_map",
        "architectures",
        "transformers_version",
        "trained_max_length",
    }
    encoder_keys = set(PosEncConfig().to_dict())
    encoder_rows, encoding_rows = [], []
    for key, value in config.to_dict().items():
        if key in generic or key.startswith("_"):
            continue
        # Strings may come from the user (config_overrides); lists, dicts, None and booleans are shown as JSON.
        if isinstance(value, (list, dict, type(None), bool)):
            shown = code_span(json.dumps(value))
        else:
            shown = markdown_text(value)
        (encoder_rows if key in encoder_keys else encoding_rows).append((code_span(key), shown))
    return encoder_rows, encoding_rows


def _training_rows(results) -> list[tuple[str, str]]:
    rows = []
    if "dataset" in results:
        label = markdown_text(results.get("dataset_name", results["dataset"]))
        if "dataset_name" in results and _looks_like_hub_id(results["dataset"]):
            label += f" ({code_span(results['dataset'])})"
        if "dataset_config" in results:
            label += f", configuration {markdown_text(results['dataset_config'])}"
        rows.append(("Data", label))
    if "train_steps" in results:
        rows.append(("Training steps", f"{results['train_steps']:,}"))
    if "train_loss" in results:
        rows.append(("Mean training loss", _format(results["train_loss"], 4)))
    if "max_seq_length" in results:
        rows.append(("Sequence length", f"{results['max_seq_length']:,} tokens"))
    if "tokenizer" in results:
        rows.append(("Tokenizer", markdown_text(results["tokenizer"])))
    return rows


def _probe_names(probes: Mapping[str, float]) -> list[str]:
    """The probes present, in the paper's order, then any others (other shuffle windows, still_entailment)."""
    return [name for name in PROBE_ORDER if name in probes] + sorted(name for name in probes if name not in PROBE_ORDER)


def _probe_rows(probes: dict[str, float], verdict: str | None = None) -> list[dict[str, str]]:
    """One row per probe: its accuracy and its delta against the original test set; no delta ("n/a (model at
    chance)") when the model's original accuracy is not above chance, since it had nothing to lose."""
    names = [name for name in _probe_names(probes) if name != STILL_ENTAILMENT]
    original = probes.get("original")
    rows = []
    for name in names:
        if name == "original" or original is None:
            delta = ""
        elif verdict == NOT_ABOVE_CHANCE:
            delta = AT_CHANCE_CELL
        else:
            delta = f"{100 * (probes[name] - original):+.1f}"
        rows.append({"name": name, "accuracy": _percent(probes[name]), "delta": delta})
    return rows


def _finetune_metrics(entry: Mapping[str, Any]) -> list[str]:
    """A task's metrics, the one that chose the learning rate first."""
    main = entry.get("main_metric")
    return ([main] if main else []) + [metric for metric in entry["metrics"] if metric != main]


def _finetune_rows(tasks: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """One row per (task, metric): mean ± std over the seeds, the metric's chance level on the same split ("–" when
    unknown), the task's verdict against chance (on every row of the task, naming the main metric it was read on;
    "unknown" when the entry has none), and the learning rate chosen on the selection split. A row of a task that
    is not above chance says so next to its score too, and is flagged ``not_above_chance``."""
    rows = []
    for name, entry in tasks.items():
        seeds = entry.get("seeds")
        examples = entry.get("examples")
        main = entry.get("main_metric")
        verdict = entry.get("verdict", "unknown")
        weak = verdict == NOT_ABOVE_CHANCE
        for metric in _finetune_metrics(entry):
            score = _format(entry["metrics"][metric], 4)
            std = entry.get("std", {}).get(metric)
            if std is not None and math.isfinite(entry["metrics"][metric]):
                score += f" ± {_format(std, 4)}"
            if seeds is not None:
                score += f" ({seeds} seed{'s' if seeds != 1 else ''})"
            if weak:
                score += " – not above chance"
            chance = entry.get("chance", {}).get(metric)
            split = markdown_text(entry["split"]) + (f" ({examples:,} examples)" if examples is not None else "")
            rows.append(
                {
                    "task": markdown_text(name),
                    "split": split,
                    "metric": markdown_text(metric) + (" (selects)" if metric == entry.get("main_metric") else ""),
                    "score": score,
                    "chance": _format(chance, 4) if chance is not None else "–",
                    "verdict": verdict if not main or metric == main else f"{verdict} (by {markdown_text(main)})",
                    "not_above_chance": weak,
                    "learning_rate": f"{entry['learning_rate']:g}" if "learning_rate" in entry else "–",
                }
            )
    return rows


def _eval_results(results) -> list[EvalResult]:
    """The finite numbers of `results` as model-index entries: fill-mask metrics on the training data's held-out
    split, one text-classification accuracy per probe on the SNLI test set, and one entry per (task, metric) of the
    downstream scores (the mean over the seeds)."""
    eval_results = []
    dataset_name = results.get("dataset_name", results.get("dataset", "unspecified"))
    dataset = results.get("dataset", "unspecified")
    if not _looks_like_hub_id(dataset):  # a description: model-index wants an identifier as the type
        dataset = re.sub(r"[^\w.]+", "-", dataset).strip("-").lower() or "unspecified"
    for key in (*("eval_loss", "perplexity"), *SUMMARY_METRICS):
        if key in results and math.isfinite(results[key]):
            metric_type, metric_name = METRIC_NAMES[key]
            eval_results.append(
                EvalResult(
                    task_type="fill-mask",
                    task_name="Masked language modelling",
                    dataset_type=dataset,
                    dataset_name=dataset_name,
                    dataset_config=results.get("dataset_config"),
                    dataset_split="validation",
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=results[key],
                )
            )
    probes = results.get("probes", {})
    probe_dataset = results.get("probe_dataset", DEFAULT_PROBE_DATASET)
    for name in _probe_names(probes):
        is_rate = name == STILL_ENTAILMENT
        probe = "role-swap" if is_rate else name
        eval_results.append(
            EvalResult(
                task_type="text-classification",
                task_name="Natural language inference (word-order probes)",
                dataset_type=probe_dataset,
                dataset_name=f"SNLI test, {probe}" if probe != "original" else "SNLI test",
                dataset_config=probe,
                dataset_split="test",
                metric_type="still_entailment_rate" if is_rate else "accuracy",
                metric_name="Still answers entailment" if is_rate else "Accuracy",
                metric_value=probes[name],
            )
        )
    for name, entry in results.get("finetune", {}).items():
        dataset, config, split = task_dataset(name, entry["split"])
        for metric in _finetune_metrics(entry):
            if math.isfinite(entry["metrics"][metric]):
                eval_results.append(
                    EvalResult(
                        task_type=task_type(entry.get("kind") or _registered_kind(name)),
                        task_name=f"Fine-tuned on {name}",
                        dataset_type=dataset,
                        dataset_name=name,
                        dataset_config=config,
                        dataset_split=split,
                        metric_type=metric,
                        # The Hub shows the name next to the value: a score at chance says so there too.
                        metric_name=metric
                        + (" (not above chance)" if entry.get("verdict") == NOT_ABOVE_CHANCE else ""),
                        metric_value=entry["metrics"][metric],
                    )
                )
    return eval_results


def _registered_kind(name: str) -> str | None:
    """The kind of a task hf_posenc knows by that name (a hand-written `finetune` entry may leave out its kind)."""
    from ..tasks.registry import TASKS

    return TASKS[name].kind.value if name in TASKS else None


def _hub_datasets(results) -> list[str]:
    datasets = []
    if "dataset" in results and _looks_like_hub_id(results["dataset"]):
        datasets.append(results["dataset"])
    if results.get("probes"):
        datasets.append(results.get("probe_dataset", DEFAULT_PROBE_DATASET))
    for name, entry in results.get("finetune", {}).items():
        dataset = task_dataset(name, entry["split"])[0]
        if dataset != name and dataset not in datasets:  # a Hub dataset (GLUE), not just the task's name
            datasets.append(dataset)
    return datasets


def _looks_like_hub_id(name: str) -> bool:
    """A Hub dataset id ('wikitext', 'stanfordnlp/snli'), not a description or a local data file."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)?", name) is None:
        return False
    return not name.lower().endswith(DATA_FILE_SUFFIXES) and not Path(name).exists()


def _format(value: float | None, decimals: int) -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "undefined (NaN)"
    return f"{value:.{decimals}f}"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def _plot_caption(path) -> str:
    return Path(path).stem.replace("_", " ").replace("-", " ")


def template_path() -> Path:
    """Where the bundled model-card template is: the source checkout's `model_cards/` (editable installs), or the
    data folder a wheel install puts it in (`<prefix>/share/hf_posenc/model_cards/`)."""
    candidates = [
        Path(__file__).resolve().parents[2] / "model_cards" / TEMPLATE_NAME,
        Path(sysconfig.get_path("data")) / "share" / "hf_posenc" / "model_cards" / TEMPLATE_NAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"The model-card template {TEMPLATE_NAME} is not installed (looked in: "
        f"{', '.join(str(c.parent) for c in candidates)}). Reinstall hf_posenc, or pass template_path=."
    )


def _render_template(path, context: dict[str, Any]) -> str:
    import jinja2

    source = Path(path if path is not None else template_path()).read_text(encoding="utf-8")
    # StrictUndefined: a misspelt variable in the template fails loudly instead of leaving a hole in the card.
    environment = jinja2.Environment(
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    return environment.from_string(source).render(**context)

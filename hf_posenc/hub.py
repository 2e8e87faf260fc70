"""Publishing a trained variant: model cards, Hub-ready folders, and the upload.

- `render_card(config, results)` writes the model card: what the variant is (paper, route, symmetric by
  construction), its configuration, data and steps, tokenizer, evaluation loss and perplexity, the locality and
  symmetry of its attention (overall, per layer, curves), the word-order probe results, a usage snippet with
  `trust_remote_code=True` and the citation of the locality/symmetry paper; its metadata carries the numbers as
  `model-index` results.
- `export(model, tokenizer, out_dir, results)` writes the folder a Hub repository holds: config with
  `auto_map`, the model code, `model.safetensors`, the tokenizer, `README.md` (the card) and the plots.
- `push(folder, repo_id)` creates the repository if needed and uploads the folder with `huggingface_hub`;
  failures become a `HubPublishError` that says what happened and what to do.

The `results` dict
------------------
Training and probing scripts fill it; every key is optional and the card shows only what is present::

    {
        # data and training
        "variant": "rope",                 # checked against the config's variant
        "dataset": "wikitext",             # a Hub dataset id (listed in the card's metadata), or a description
                                           # with spaces such as "built-in corpus (Wikipedia sample, fairy tales)"
        "dataset_name": "WikiText-103",    # pretty name (defaults to `dataset`)
        "dataset_config": "wikitext-103-raw-v1",
        "train_steps": 10000,
        "train_loss": 2.45,                # mean training loss (Trainer's training_loss)
        "max_seq_length": 128,
        "tokenizer": "WordPiece trained on the corpus, 8,000 tokens",  # export() fills it from the tokenizer
        # evaluation (masked-language modelling on held-out text)
        "eval_loss": 2.31,
        "perplexity": 10.1,                # defaults to exp(eval_loss)
        # attention (hf_posenc.metrics.summarize); NaN means undefined and is shown as such
        "locality": 0.41, "symmetry": 0.83, "symmetry_scale_aware": 0.62,
        "per_layer": [{"layer": 0, "locality": 0.5, "symmetry": 0.8, "symmetry_scale_aware": 0.7}, ...],
        "measured_on": "64 validation sequences of 128 tokens",
        "plots": ["runs/rope/locality_symmetry.png", ...],   # copied into the folder's plots/ by export()
        # word-order probes (hf_posenc.probing), accuracies as fractions in [0, 1]
        "probes": {"original": 0.81, "shuffle-3": 0.80, "shuffle-4": 0.79, "shuffle-5": 0.79,
                   "shuffle-6": 0.78, "random": 0.76, "role-swap": 0.31, "still_entailment": 0.69},
        "probe_dataset": "stanfordnlp/snli",
    }
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from .metrics import SUMMARY_METRICS
from .probing import PROBE_NAMES, STILL_ENTAILMENT

TEMPLATE_NAME = "posenc_model_card.md.jinja"
DEFAULT_COMMIT_MESSAGE = "Upload hf_posenc model"
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
    "bias": "an additive attention bias that depends only on the positions of query and key",
    "score": "extra attention scores between token content and relative-position embeddings",
}

NUMBER_KEYS = ("eval_loss", "perplexity", "train_loss", *SUMMARY_METRICS)
COUNT_KEYS = ("train_steps", "max_seq_length")
TEXT_KEYS = ("variant", "dataset", "dataset_name", "dataset_config", "tokenizer", "measured_on", "probe_dataset")
# Local data files are described on the card but are not Hub datasets for its metadata.
DATA_FILE_SUFFIXES = (".txt", ".text", ".json", ".jsonl", ".csv", ".tsv", ".parquet", ".arrow", ".gz", ".bz2", ".xz")
RESULT_KEYS = (*NUMBER_KEYS, *COUNT_KEYS, *TEXT_KEYS, "per_layer", "probes", "plots")
PROBE_ORDER = ("original", *PROBE_NAMES)

METRIC_NAMES = {
    "eval_loss": ("loss", "Eval loss"),
    "perplexity": ("perplexity", "Perplexity"),
    "locality": ("locality", "Locality"),
    "symmetry": ("symmetry", "Symmetry (reference)"),
    "symmetry_scale_aware": ("symmetry_scale_aware", "Symmetry (scale-aware)"),
}


class HubPublishError(RuntimeError):
    """An upload to the Hub failed. The message says what happened and what to do; the local folder is unchanged.

    Attributes: `repo_id`, `folder`, and `status_code` (the HTTP status, None for network failures).
    """

    def __init__(self, message: str, *, repo_id: str, folder: Path, status_code: int | None = None):
        super().__init__(message)
        self.repo_id = repo_id
        self.folder = folder
        self.status_code = status_code


# ----------------------------------------------------------------------------------------------- model card
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
    `results` follows the schema in this module's docstring (every key optional, unknown keys rejected).
    `repo_id` goes into the usage snippet (without it, a placeholder that `push` fills in); `model_name` is the
    card's title and the model-index name (default: the repository name, else `posenc-<variant>`); `license`,
    `language` and extra `tags` go into the metadata. `template_path` replaces the bundled Jinja template.
    """
    results = normalize_results(results)
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
        license=license,
        language=language,
        tags=[*CARD_TAGS[:2], f"posenc_{variant}", *CARD_TAGS[2:], *(tags or [])],
        datasets=_hub_datasets(results) or None,
        model_name=model_name,
        eval_results=_eval_results(results) or None,
    )
    context = {
        "card_data": card_data.to_yaml(),
        "model_name": model_name,
        "usage_model_id": repo_id or REPO_ID_PLACEHOLDER,
        "variant": variant,
        "model_type": getattr(config, "model_type", f"posenc_{variant}"),
        "paper": encoding_class.paper or "(none)",
        "route": encoding_class.route,
        "route_description": ROUTE_DESCRIPTIONS.get(encoding_class.route, "see the encoding's documentation"),
        "symmetric": _symmetric_by_construction(encoding_class, config),
        "extrapolates": bool(getattr(encoding_class, "extrapolates", True)),
        "encoding_description": _markdown_text(" ".join(inspect.cleandoc(encoding_class.__doc__ or "").split())),
        "config_rows": encoder_rows,
        "encoding_rows": encoding_rows,
        "training_rows": _training_rows(results),
        "dataset_label": results.get("dataset_name") or results.get("dataset"),
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
        "measured_on": results.get("measured_on"),
        "plots": [
            {"caption": _plot_caption(path), "path": f"plots/{Path(path).name}"} for path in results.get("plots", [])
        ],
        "probe_rows": _probe_rows(results.get("probes", {})),
        "probe_dataset": results.get("probe_dataset", DEFAULT_PROBE_DATASET),
        "still_entailment": _percent(results["probes"][STILL_ENTAILMENT])
        if STILL_ENTAILMENT in results.get("probes", {})
        else None,
        "bibtex": PAPER_BIBTEX,
    }
    return ModelCard(_render_template(template_path, context))


def normalize_results(results: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a `results` dict against the schema (module docstring) and return it with plain Python values:
    floats for metrics, ints for counts, strings for paths. Raises ValueError naming the offending key."""
    if results is None:
        return {}
    if not isinstance(results, Mapping):
        raise ValueError(f"results must be a dict (see hf_posenc.hub's docstring); got {type(results).__name__}.")
    unknown = sorted(set(results) - set(RESULT_KEYS))
    if unknown:
        raise ValueError(f"Unknown key(s) in results: {', '.join(unknown)}. Known keys: {', '.join(RESULT_KEYS)}.")
    normalized: dict[str, Any] = {}
    for key, value in results.items():
        if value is None:
            continue
        if key in NUMBER_KEYS:
            normalized[key] = _number(f"results[{key!r}]", value)
        elif key in COUNT_KEYS:
            normalized[key] = _count(f"results[{key!r}]", value)
        elif key in TEXT_KEYS:
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"results[{key!r}] must be a non-empty string; got {value!r}.")
            normalized[key] = value.strip()
        elif key == "per_layer":
            normalized[key] = _per_layer(value)
        elif key == "probes":
            normalized[key] = _probes(value)
        elif key == "plots":
            if isinstance(value, (str, os.PathLike)) or not all(isinstance(p, (str, os.PathLike)) for p in value):
                raise ValueError(f"results['plots'] must be a list of file paths; got {value!r}.")
            names = [Path(p).name for p in value]
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise ValueError(f"results['plots'] has several files named {', '.join(duplicates)}; rename them.")
            normalized[key] = [str(p) for p in value]
    if "perplexity" not in normalized and "eval_loss" in normalized:
        # exp overflows to inf for a diverged run; the card then shows inf and model-index leaves it out.
        loss = normalized["eval_loss"]
        normalized["perplexity"] = math.exp(loss) if loss < 700 else math.inf
    return normalized


def attention_results(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The attention keys of `results` ("locality", "symmetry", "symmetry_scale_aware", "per_layer") from the
    dict `hf_posenc.metrics.summarize` returns. Values it reports as None (undefined) are left out."""
    per_layer = summary.get("per_layer") or {}
    num_layers = max((len(values) for values in per_layer.values()), default=0)
    rows = [
        {"layer": layer, **{key: per_layer[key][layer] for key in SUMMARY_METRICS if key in per_layer}}
        for layer in range(num_layers)
    ]
    found = {key: summary[key] for key in SUMMARY_METRICS if summary.get(key) is not None}
    return {**found, "per_layer": rows} if rows else found


def _number(name: str, value) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a number; got {value!r}.")
    try:
        return float(value)  # int, float, numpy scalar, 0-d torch tensor
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (a float or a one-element tensor); got {value!r}.") from None


def _count(name: str, value) -> int:
    number = _number(name, value)
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise ValueError(f"{name} must be a whole number >= 0; got {value!r}.")
    return int(number)


def _per_layer(rows) -> list[dict[str, Any]]:
    if isinstance(rows, Mapping) or not isinstance(rows, (list, tuple)):
        raise ValueError("results['per_layer'] must be a list of dicts like {'layer': 0, 'locality': 0.5, ...}.")
    normalized = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping) or "layer" not in row:
            raise ValueError(f"results['per_layer'][{index}] must be a dict with a 'layer' key; got {row!r}.")
        unknown = sorted(set(row) - {"layer", *SUMMARY_METRICS})
        if unknown:
            raise ValueError(
                f"results['per_layer'][{index}] has unknown key(s) {', '.join(unknown)}; "
                f"known: layer, {', '.join(SUMMARY_METRICS)}."
            )
        entry = {"layer": _count(f"results['per_layer'][{index}]['layer']", row["layer"])}
        for key in SUMMARY_METRICS:
            if row.get(key) is not None:
                entry[key] = _number(f"results['per_layer'][{index}][{key!r}]", row[key])
        normalized.append(entry)
    return normalized


def _probes(probes) -> dict[str, float]:
    if not isinstance(probes, Mapping):
        raise ValueError("results['probes'] must be a dict of probe name -> accuracy, e.g. {'original': 0.81}.")
    normalized = {}
    for name, value in probes.items():
        if name not in (*PROBE_ORDER, STILL_ENTAILMENT) and not re.fullmatch(r"shuffle-\d+", str(name)):
            raise ValueError(
                f"Unknown probe {name!r} in results['probes']; known: {', '.join(PROBE_ORDER)}, shuffle-N, "
                f"{STILL_ENTAILMENT}."
            )
        number = _number(f"results['probes'][{name!r}]", value)
        if not 0.0 <= number <= 1.0:
            raise ValueError(
                f"results['probes'][{name!r}] = {number} is not a fraction in [0, 1]; give accuracies as fractions "
                "(0.81, not 81)."
            )
        normalized[name] = number
    return normalized


def _encoding_class(variant):
    from .positional import ENCODINGS

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

    from .configuration_posenc import PosEncConfig

    generic = set(PreTrainedConfig().to_dict()) | {"auto_map", "architectures", "transformers_version"}
    encoder_keys = set(PosEncConfig().to_dict())
    encoder_rows, encoding_rows = [], []
    for key, value in config.to_dict().items():
        if key in generic or key.startswith("_"):
            continue
        shown = f"`{json.dumps(value)}`" if isinstance(value, (list, dict, type(None), bool)) else str(value)
        (encoder_rows if key in encoder_keys else encoding_rows).append((key, shown))
    return encoder_rows, encoding_rows


def _training_rows(results) -> list[tuple[str, str]]:
    rows = []
    if "dataset" in results:
        label = results.get("dataset_name", results["dataset"])
        if "dataset_name" in results and _looks_like_hub_id(results["dataset"]):
            label += f" (`{results['dataset']}`)"
        if "dataset_config" in results:
            label += f", configuration `{results['dataset_config']}`"
        rows.append(("Data", label))
    if "train_steps" in results:
        rows.append(("Training steps", f"{results['train_steps']:,}"))
    if "train_loss" in results:
        rows.append(("Mean training loss", _format(results["train_loss"], 4)))
    if "max_seq_length" in results:
        rows.append(("Sequence length", f"{results['max_seq_length']:,} tokens"))
    if "tokenizer" in results:
        rows.append(("Tokenizer", results["tokenizer"]))
    return rows


def _probe_names(probes: Mapping[str, float]) -> list[str]:
    """The probes present, in the paper's order, then any others (other shuffle windows, still_entailment)."""
    return [name for name in PROBE_ORDER if name in probes] + sorted(name for name in probes if name not in PROBE_ORDER)


def _probe_rows(probes: dict[str, float]) -> list[dict[str, str]]:
    names = [name for name in _probe_names(probes) if name != STILL_ENTAILMENT]
    original = probes.get("original")
    rows = []
    for name in names:
        delta = "" if name == "original" or original is None else f"{100 * (probes[name] - original):+.1f}"
        rows.append({"name": name, "accuracy": _percent(probes[name]), "delta": delta})
    return rows


def _eval_results(results) -> list[EvalResult]:
    """The finite numbers of `results` as model-index entries: fill-mask metrics on the training data's held-out
    split, and one text-classification accuracy per probe on the SNLI test set."""
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
    return eval_results


def _hub_datasets(results) -> list[str]:
    datasets = []
    if "dataset" in results and _looks_like_hub_id(results["dataset"]):
        datasets.append(results["dataset"])
    if results.get("probes"):
        datasets.append(results.get("probe_dataset", DEFAULT_PROBE_DATASET))
    return datasets


def _looks_like_hub_id(name: str) -> bool:
    """A Hub dataset id ('wikitext', 'stanfordnlp/snli'), not a description or a local data file."""
    if re.fullmatch(r"[\w][\w.\-]*(/[\w.\-]+)?", name) is None:
        return False
    return not name.lower().endswith(DATA_FILE_SUFFIXES) and not Path(name).exists()


def _markdown_text(text: str) -> str:
    """Plain text for a Markdown paragraph: formulas such as `-s*w*d^2` must not turn into italics. Code spans
    (between backticks) are kept as they are."""
    segments = text.split("`")
    return "`".join(segment if index % 2 else segment.replace("*", "\\*") for index, segment in enumerate(segments))


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
        Path(__file__).resolve().parent.parent / "model_cards" / TEMPLATE_NAME,
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


# ------------------------------------------------------------------------------------------------ export
def export(
    model,
    tokenizer,
    out_dir: str | os.PathLike,
    results: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    repo_id: str | None = None,
    **card_options,
) -> Path:
    """Write a Hub-ready folder for `model` and return its path.

    It holds what a Hub repository of the model holds: `config.json` with `auto_map`, the model code files
    (so the folder loads with `trust_remote_code=True` without hf_posenc), `model.safetensors`, the tokenizer,
    `README.md` (the card from `render_card(model.config, results, repo_id=..., **card_options)`) and the
    plots listed in `results["plots"]`, copied into `plots/`.

    `out_dir` may be missing, empty, or an earlier export, whose files are replaced. Any other non-empty folder
    is refused unless `overwrite=True`; even then nothing is deleted: files of the folder that the export does
    not write stay, with a warning, since `push` would upload them too.
    """
    config = getattr(model, "config", None)
    if config is None or getattr(config, "variant", None) is None:
        raise ValueError(
            f"export expects an hf_posenc model (with config.variant); got {type(model).__name__}. Build it with "
            "hf_posenc.create_config(...) and transformers' Auto classes."
        )
    if tokenizer is None:
        raise ValueError("export needs the tokenizer the model was trained with: a Hub model is unusable without it.")
    results = normalize_results(results)
    if "tokenizer" not in results:
        results["tokenizer"] = _describe_tokenizer(tokenizer)
    plots = [Path(p) for p in results.get("plots", [])]
    missing = [str(p) for p in plots if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Plot file(s) listed in results['plots'] not found: {', '.join(missing)}.")
    card = render_card(config, results, repo_id=repo_id, **card_options)  # fails on bad input before any write

    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build the folder beside the target and move it in: a failure half-way leaves the target as it was, and the
    # list of written files tells which old files would be left behind.
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.export-", dir=out_dir.parent) as staging_name:
        staging = Path(staging_name)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        card.save(staging / "README.md")
        if plots:
            (staging / "plots").mkdir()
            for plot in plots:
                shutil.copy2(plot, staging / "plots" / plot.name)
        _check_loadable_without_package(staging)
        written = sorted(path.relative_to(staging) for path in staging.rglob("*") if path.is_file())
        out_dir.mkdir(exist_ok=True)
        for relative in written:
            (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, out_dir / relative)
    left_behind = sorted(
        str(relative)
        for relative in (path.relative_to(out_dir) for path in out_dir.rglob("*") if path.is_file())
        if relative not in written
    )
    if left_behind:
        warnings.warn(
            f"{out_dir} also holds files this export did not write: {', '.join(left_behind)}. They were left in "
            "place, and `push` would upload them too; remove them if they do not belong to the model.",
            UserWarning,
            stacklevel=2,
        )
    return out_dir


def _describe_tokenizer(tokenizer) -> str:
    return f"{type(tokenizer).__name__}, vocabulary of {len(tokenizer):,} tokens"


def is_export_folder(folder: Path) -> bool:
    """Whether `folder` holds an earlier hf_posenc export: an hf_posenc config and a card with its tags."""
    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type", "")
        card = ModelCard.load(folder / "README.md", ignore_metadata_errors=True)
    except (OSError, ValueError, AttributeError):
        return False
    card_tags = card.data.tags or []
    return str(model_type).startswith("posenc_") and "positional-encoding" in card_tags and model_type in card_tags


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder; choose another out_dir.")
    if not out_dir.is_dir() or not any(out_dir.iterdir()) or overwrite or is_export_folder(out_dir):
        return
    contents = sorted(path.name for path in out_dir.iterdir())
    shown = ", ".join(contents[:8]) + (", ..." if len(contents) > 8 else "")
    raise FileExistsError(
        f"{out_dir} is not empty and does not hold an earlier hf_posenc export (it holds: {shown}). Choose an "
        "empty or new folder, or pass overwrite=True to write the export into it (nothing is deleted)."
    )


def _check_loadable_without_package(folder: Path) -> None:
    """The folder must carry `auto_map` and every code file it names, or Hub users cannot load it."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    auto_map = config.get("auto_map")
    if not auto_map:
        raise RuntimeError(
            "The saved config.json has no auto_map, so the folder would not load with trust_remote_code. The "
            "model's classes must be registered for the Auto classes (importing hf_posenc does this)."
        )
    modules = {reference.split(".")[0] for reference in auto_map.values() if isinstance(reference, str)}
    missing = sorted(f"{module}.py" for module in modules if not (folder / f"{module}.py").is_file())
    if missing:
        raise RuntimeError(f"save_pretrained did not copy the model code ({', '.join(missing)}) into the folder.")


# ------------------------------------------------------------------------------------------------ upload
def export_run(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    probe_results: str | os.PathLike | None = None,
    repo_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """`export` of a finished `examples/pretrain.py` run: its model and tokenizer, the numbers of its
    `posenc_results.json`, the curves the metrics callback drew, and the probe accuracies of a
    `probe_results.json` (from `hf-posenc probe`) when given."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    run = Path(run_dir)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(
            f"{run} holds no trained model (no config.json); pass the --output_dir of a finished run."
        )
    results_file = run / "posenc_results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    results["plots"] = [str(path) for path in sorted((run / "posenc_plots").glob("*curves*.png"))]
    if probe_results is not None:
        probe_file = Path(probe_results)
        if not probe_file.is_file():
            raise FileNotFoundError(f"{probe_file} does not exist; pass the probe_results.json of `hf-posenc probe`.")
        results["probes"] = json.loads(probe_file.read_text())["probes"]
    model = AutoModelForMaskedLM.from_pretrained(run, trust_remote_code=True)
    return export(model, AutoTokenizer.from_pretrained(run), out_dir, results, overwrite=overwrite, repo_id=repo_id)


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
) -> str:
    """Create the Hub model repository `repo_id` if needed and upload `folder` to it; return the repository URL.

    The token is `token`, else the usual places (`HF_TOKEN`, then the one saved by `hf auth login`); the
    endpoint is `HF_ENDPOINT` (default https://huggingface.co). `private=True` makes a new repository private
    (an existing one keeps its visibility). If the card still has the placeholder repository id in its usage
    snippet, the real id is written into README.md before the upload.

    Raises HubPublishError for a missing or rejected token (401), no permission (403), a missing repository
    (404), other Hub errors and network failures. After a failure the local folder is exactly as before; rerun
    the same call to resume (files already uploaded are skipped).
    """
    from huggingface_hub import constants, get_token

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; export the model first (hf_posenc.hub.export).")
    if not any(path.is_file() for path in folder.rglob("*")):
        raise ValueError(f"{folder} holds no files; there is nothing to upload.")
    if not isinstance(repo_id, str) or not re.fullmatch(r"([\w.\-]+/)?[\w.\-]+", repo_id):
        raise ValueError(
            f"repo_id must look like 'namespace/name' (or 'name' for your own namespace); got {repo_id!r}."
        )
    endpoint = constants.ENDPOINT
    token = token or get_token()
    if not token:
        raise HubPublishError(
            f"No Hugging Face token found, so nothing can be uploaded to {endpoint}. Log in with `hf auth login`, "
            "set HF_TOKEN, or pass a token (--token); the token needs write access. "
            f"The local folder {folder} is unchanged.",
            repo_id=repo_id,
            folder=folder,
        )
    from . import __version__

    api = HfApi(token=token, library_name="hf_posenc", library_version=__version__)
    stage = "creating the repository"
    try:
        repo_url = api.create_repo(repo_id, private=True if private else None, exist_ok=True, repo_type="model")
        stage = "uploading to the repository"
        with _repo_id_in_card(folder, repo_url.repo_id):
            api.upload_folder(repo_id=repo_url.repo_id, folder_path=folder, commit_message=commit_message)
    except Exception as error:
        explained = _explain_failure(error, stage=stage, repo_id=repo_id, folder=folder, endpoint=endpoint)
        if explained is None:
            raise
        raise explained from error
    return str(repo_url)


@contextlib.contextmanager
def _repo_id_in_card(folder: Path, repo_id: str):
    """Write `repo_id` over the card's placeholder for the upload; put the old card back if the upload fails."""
    readme = folder / "README.md"
    try:
        original = readme.read_bytes()
    except OSError:
        original = None
    placeholder = f'"{REPO_ID_PLACEHOLDER}"'.encode()
    if original is None or placeholder not in original:
        yield
        return
    try:
        readme.write_bytes(original.replace(placeholder, f'"{repo_id}"'.encode()))
    except OSError:  # a read-only folder: upload the card as it is
        yield
        return
    try:
        yield
    except BaseException:
        readme.write_bytes(original)
        raise


def _explain_failure(error: BaseException, *, stage: str, repo_id: str, folder: Path, endpoint: str):
    """A HubPublishError that says what went wrong and what to do, or None for an error that is not about the Hub."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    unchanged = f" The local folder {folder} is unchanged."
    resume = " Rerun the same command to resume: files already uploaded are skipped."
    if isinstance(error, OfflineModeIsEnabled):
        message = "HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, so nothing can be uploaded. Unset it and rerun."
        return HubPublishError(message + unchanged, repo_id=repo_id, folder=folder)
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        server_says = f" The Hub said: {error.server_message}." if error.server_message else ""
        if status == 401:
            message = (
                f"The Hub at {endpoint} rejected the token (401 Unauthorized) while {stage} '{repo_id}': it is "
                f"invalid, expired or revoked.{server_says} Create a token with write access at "
                f"{endpoint}/settings/tokens, then log in with `hf auth login`, set HF_TOKEN, or pass --token."
            )
        elif status == 403:
            namespace = repo_id.split("/")[0] if "/" in repo_id else "your user namespace"
            message = (
                f"The token is not allowed to write to '{repo_id}' (403 Forbidden while {stage}).{server_says} "
                f"Check that '{namespace}' is your user name or an organization where you may write, and that the "
                "token has write access (a read token, or a fine-grained token without write permission on this "
                "repository, cannot upload)."
            )
        elif status == 404:
            message = (
                f"The repository '{repo_id}' was not found on {endpoint} (404 while {stage}).{server_says} Check the "
                "id ('namespace/name'); if the repository is private or was just deleted, check that the token can "
                "see it, then rerun."
            )
        else:
            message = f"The Hub answered {status} while {stage} '{repo_id}'.{server_says}{resume}"
        return HubPublishError(message + unchanged, repo_id=repo_id, folder=folder, status_code=status)
    if isinstance(error, ValueError) and "Invalid metadata in README.md" in str(error):
        message = (
            f"The Hub rejected the metadata of {folder / 'README.md'}: {error} Re-export the folder with "
            "hf_posenc.hub.export (or fix the YAML block at the top of README.md) and rerun."
        )
        return HubPublishError(message + unchanged, repo_id=repo_id, folder=folder, status_code=400)
    if _is_network_error(error):
        message = (
            f"Could not reach the Hub at {endpoint} while {stage} '{repo_id}' ({type(error).__name__}: {error}). "
            "Check the network connection, proxy settings and HF_ENDPOINT." + resume
        )
        return HubPublishError(message + unchanged, repo_id=repo_id, folder=folder)
    return None


def _is_network_error(error: BaseException) -> bool:
    """Connection refused, reset, dropped or timed out, whichever HTTP library huggingface_hub uses."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    http_libraries = ("httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3")
    transport_errors = ("TransportError", "ConnectionError", "TimeoutException", "RemoteProtocolError", "NetworkError")
    return any(
        cls.__module__.split(".")[0] in http_libraries and cls.__name__ in transport_errors
        for cls in type(error).__mro__
    )


# ------------------------------------------------------------------------------------------------ command line
def add_push_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of `hf-posenc push DIR REPO_ID [--private]` to `parser` (a subcommand parser)."""
    parser.add_argument("folder", metavar="DIR", help="the folder to upload, as written by hf_posenc.hub.export")
    parser.add_argument("repo_id", metavar="REPO_ID", help="the Hub model repository, 'namespace/name'")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument(
        "--token", default=None, help="a Hub token with write access (default: HF_TOKEN, else `hf auth login`'s)"
    )
    parser.add_argument("--commit-message", dest="commit_message", default=DEFAULT_COMMIT_MESSAGE)
    return parser


def run_push(args: argparse.Namespace) -> int:
    """Run `hf-posenc push`: upload, print the repository URL, and return the exit status (0 done, 1 failed,
    with the reason on stderr)."""
    try:
        url = push(
            args.folder, args.repo_id, private=args.private, token=args.token, commit_message=args.commit_message
        )
    except (HubPublishError, FileNotFoundError, ValueError) as error:
        print(f"hf-posenc push: {error}", file=sys.stderr)
        return 1
    print(url)
    return 0

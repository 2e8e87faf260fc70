"""A Hub-ready folder for a trained variant: `export(model, tokenizer, out_dir, results)`, and `export_run(run_dir,
out_dir)` for a finished pretraining run.

The folder holds what a Hub repository of the model holds: `config.json` with `auto_map`, the model code files (so
it loads with `trust_remote_code=True` without hf_posenc), `model.safetensors`, the tokenizer, `README.md` (the card)
and the plots, plus `export_manifest.json`, the list of files `push` uploads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard
from transformers.dynamic_module_utils import get_relative_imports

from ..results import PLOTS_FOLDER, FinetuneResult, PretrainResult, ProbeResult, ResultFile
from ..storage import require_model_folder
from .card import REPO_ID_PLACEHOLDER, render_card
from .card_results import normalize_results
from .downstream import finetune_card_results
from .manifest import MANIFEST_NAME, ExportManifest, files_in_folder
from .repo_id import check_repo_id

# The curves the metrics callback draws into a run's PLOTS_FOLDER; its heatmaps stay in the run folder.
CURVE_PLOTS = "*curves*.png"
CARD_NAME = "README.md"


def export(
    model,
    tokenizer,
    out_dir: str | os.PathLike,
    results: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    replace_card: bool = False,
    repo_id: str | None = None,
    **card_options,
) -> Path:
    """Write a Hub-ready folder for `model` and return its path.

    `results` holds the keys of `hf_posenc.hub.CardResults`; the card comes from `render_card(model.config,
    results, repo_id=..., **card_options)` and the plots listed in `results["plots"]` are copied into `plots/`.

    `out_dir` may be missing, empty, or an earlier export, whose files are replaced. Any other non-empty folder is
    refused unless `overwrite=True`; even then nothing is deleted: files of the folder that the export does not
    write stay, with a warning, and `push` leaves them out. A file the export replaces that is not as the last export
    wrote it (edited since, or written by someone else; the manifest's SHA-256 tells) is named in a warning, and a
    `README.md` of that kind (a hand-edited card, or your own) is refused unless `replace_card=True`. The files are
    written in a staging folder inside `out_dir` and only then renamed into place, so a failed save leaves the folder as it was; since nothing is
    staged beside it, a mount point or a folder whose parent is read-only works. A symbolic link at a file's place is replaced, never written through;
    a link in place of a subfolder (`plots/`) is refused.
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
    previous = _previous_manifest(out_dir)
    _check_card_replaceable(out_dir, previous, replace_card)  # before the expensive saves
    created = _make_folder(out_dir)
    try:
        # Staged inside the target: the final renames never cross a filesystem boundary (a mount point), and the
        # parent folder need not be writable.
        staging = Path(tempfile.mkdtemp(prefix=".export-staging-", dir=out_dir))
    except PermissionError:
        raise PermissionError(f"{out_dir} is not writable; choose a folder you can write to.") from None
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        card.save(staging / "README.md")
        if plots:
            (staging / "plots").mkdir()
            for plot in plots:
                shutil.copyfile(plot, staging / "plots" / plot.name)
        _check_loadable_without_package(staging)
        written = sorted(path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file())
        _refuse_linked_subfolders(out_dir, written)
        manifest = ExportManifest.of(staging, written, card_model_id=repo_id or REPO_ID_PLACEHOLDER)
        replaced_edits = [relative for relative in written if previous.edited(out_dir, relative)]
        for relative in written:
            (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, out_dir / relative)  # replaces a link at the target, never follows it
        manifest.save(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:  # the folder is ours alone: leave nothing behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    if replaced_edits:
        warnings.warn(
            f"Replaced in {out_dir}: {', '.join(replaced_edits)}, which differed from what the last export wrote "
            "(edited since, or not written by an export).",
            UserWarning,
            stacklevel=2,
        )
    left_behind = sorted(set(files_in_folder(out_dir)) - set(written) - {MANIFEST_NAME})
    if left_behind:
        warnings.warn(
            f"{out_dir} also holds files this export did not write: {', '.join(left_behind)}. They were left in "
            "place; `push` does not upload them.",
            UserWarning,
            stacklevel=2,
        )
    return out_dir


def export_run(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    probe_results: str | os.PathLike | None = None,
    finetune_results: str | os.PathLike | None = None,
    repo_id: str | None = None,
    overwrite: bool = False,
    replace_card: bool = False,
) -> Path:
    """`export` of a finished pretraining run: its model and tokenizer, the numbers of its `PretrainResult`, the
    curves the metrics callback drew, the probe accuracies of a `ProbeResult` (the `probe_results.json` of
    `hf-posenc probe`, or the folder holding it) when given, and the downstream scores of a finished
    `FinetuneResult` (the `finetune_results.json` of `hf-posenc finetune`, or its folder) when given.

    Only hf_posenc variants are exported, and they are loaded with hf_posenc's own classes: code files that the
    run folder's `config.json` names (`auto_map`) are never run.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    run = require_model_folder(run_dir, "run")
    if repo_id is not None:
        check_repo_id(repo_id, require_namespace=True)
    model_type = _require_posenc_model(run)
    results: dict[str, Any] = {}
    if PretrainResult.exists_in(run):
        pretrain = PretrainResult.load(run)
        if _model_type_of(pretrain.variant) != model_type:
            raise ValueError(
                f"{PretrainResult.path_in(run)}['variant'] is {pretrain.variant!r}, but {run} holds a {model_type!r} "
                "model: the results belong to another run. Pass the run folder they were written in."
            )
        results.update(_card_results_of(pretrain, PretrainResult.path_in(run)))
    results["plots"] = [str(path) for path in _curve_plots(run / PLOTS_FOLDER)]
    for given, result_type, command, what in (
        (probe_results, ProbeResult, "hf-posenc probe", "probe results"),
        (finetune_results, FinetuneResult, "hf-posenc finetune", "fine-tuning results"),
    ):
        if given is None:
            continue
        result_file = _result_file(Path(given), result_type, command)
        result = _load_result(result_file, result_type, command)
        if result.model_type != model_type:
            raise ValueError(
                f"{result_file} holds the {what} of a {result.model_type!r} model, but {run} holds a {model_type!r} "
                f"model: pass the {what} of this run's model."
            )
        results.update(_card_results_of(result, result_file))
    _check_out_dir(Path(out_dir), overwrite)  # the folder's checks first, before the model loads
    _check_card_replaceable(Path(out_dir), _previous_manifest(Path(out_dir)), replace_card)
    # trust_remote_code=False: hf_posenc's variants are registered with the Auto classes, so nothing of the
    # folder's own code is needed or run; transformers refuses instead of prompting.
    model = AutoModelForMaskedLM.from_pretrained(run, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(run, trust_remote_code=False)
    return export(model, tokenizer, out_dir, results, overwrite=overwrite, replace_card=replace_card, repo_id=repo_id)


def is_export_folder(folder: Path) -> bool:
    """Whether `folder` holds an earlier hf_posenc export: a manifest, or (older exports) an hf_posenc config and a
    card with its tags."""
    folder = Path(folder)
    try:
        ExportManifest.load(folder)
        return True
    except (FileNotFoundError, ValueError):
        pass
    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type", "")
        card = ModelCard.load(folder / "README.md", ignore_metadata_errors=True)
    except (OSError, ValueError, AttributeError):
        return False
    card_tags = card.data.tags or []
    return str(model_type).startswith("posenc_") and "positional-encoding" in card_tags and model_type in card_tags


# ------------------------------------------------------------------------------------------------ run folder
def _require_posenc_model(run: Path) -> str:
    """The model type of the run's config; ValueError unless it is an hf_posenc variant."""
    from .. import VARIANTS

    config_file = run / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{config_file} is not valid JSON ({error}); pass the folder of a finished run.") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    known = sorted(config_class.model_type for config_class in VARIANTS.values())
    if model_type not in known:
        raise ValueError(
            f"{run} holds a model of type {model_type!r}, not an hf_posenc variant ({known[0]}, {known[1]}, ...); "
            "export publishes hf_posenc models only. Pass the --output_dir of an hf_posenc pretraining run."
        )
    return model_type


def _model_type_of(variant: object) -> str | None:
    from .. import VARIANTS

    return VARIANTS[variant].model_type if isinstance(variant, str) and variant in VARIANTS else None


def _curve_plots(folder: Path) -> list[Path]:
    """The callback's curve plots: regular files with one name only. A symbolic link could pull any file of the
    machine into the export, and so could a hard link (another name of a file elsewhere on the same disk)."""
    plots = sorted(folder.glob(CURVE_PLOTS)) if folder.is_dir() and not folder.is_symlink() else []
    linked = [path.name for path in plots if path.is_symlink() or not path.is_file()]
    hard_linked = [path.name for path in plots if path.name not in linked and path.stat().st_nlink > 1]
    if linked:
        warnings.warn(
            f"{folder}: {', '.join(linked)} are not regular files (symbolic links?) and are left out of the card.",
            UserWarning,
            stacklevel=3,
        )
    if hard_linked:
        warnings.warn(
            f"{folder}: {', '.join(hard_linked)} are hard links (one file with several names, which may be any file of "
            "this disk) and are left out of the card; replace them with copies to include them.",
            UserWarning,
            stacklevel=3,
        )
    return [path for path in plots if path.name not in linked and path.name not in hard_linked]


def _result_file(path: Path, kind: type[ResultFile], command: str) -> Path:
    file = path / kind.FILE_NAME if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass the {kind.FILE_NAME} of `{command}` (or its folder).")
    return file


def _load_result(file: Path, kind: type[ResultFile], command: str):
    if file.name == kind.FILE_NAME:
        return kind.load(file.parent)
    # A renamed copy of the file: read it the same way.
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file} is not valid JSON ({error}); pass the {kind.FILE_NAME} of `{command}`.") from None
    return kind.from_dict(values, source=str(file))


def _card_results_of(result: PretrainResult | ProbeResult | FinetuneResult, path: Path) -> dict[str, Any]:
    """The card's keys of a loaded result, checked, with errors that name the file and the key."""
    if isinstance(result, FinetuneResult):
        values: Mapping[str, Any] = finetune_card_results(result, path)  # refuses an unfinished run
    elif isinstance(result, ProbeResult) and not isinstance(result.probes, dict):
        values = {"probes": result.probes}  # normalize_results says what is expected
    elif isinstance(result, PretrainResult) and not isinstance(result.per_layer, list):
        values = {"per_layer": result.per_layer}
    else:
        values = result.card_results()
    try:
        return normalize_results(values, source=str(path))
    except ValueError as error:
        raise ValueError(f"{error} Fix {path.name} or write it again (it is written by hf_posenc).") from None


# ------------------------------------------------------------------------------------------------ folder
def _describe_tokenizer(tokenizer) -> str:
    return f"{type(tokenizer).__name__}, vocabulary of {len(tokenizer):,} tokens"


def _previous_manifest(out_dir: Path) -> ExportManifest:
    """The manifest of the export in `out_dir`, or an empty one (nothing there is known to be the export's own)."""
    try:
        return ExportManifest.load(out_dir)
    except (FileNotFoundError, ValueError):
        return ExportManifest({})


def _check_card_replaceable(out_dir: Path, previous: ExportManifest, replace_card: bool) -> None:
    if not replace_card and previous.edited(out_dir, CARD_NAME):
        raise FileExistsError(
            f"{out_dir / CARD_NAME} is not the card the last export wrote (it was edited, or no export wrote it), and "
            "this export would replace it. Move it elsewhere to keep it, or pass replace_card=True (--replace_card) "
            "to replace it."
        )


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder; choose another out_dir.")
    if not out_dir.is_dir() or not any(out_dir.iterdir()) or overwrite or is_export_folder(out_dir):
        return
    contents = sorted(path.name for path in out_dir.iterdir())
    shown = ", ".join(contents[:8]) + (", ..." if len(contents) > 8 else "")
    raise FileExistsError(
        f"{out_dir} is not empty and does not hold an earlier hf_posenc export (it holds: {shown}). Choose an "
        "empty or new folder, or pass overwrite=True (--overwrite) to write the export into it (nothing is deleted)."
    )


def _make_folder(out_dir: Path) -> bool:
    """Create `out_dir` if needed; whether it was created here."""
    if out_dir.is_dir():
        return False
    try:
        out_dir.mkdir(parents=True)
    except PermissionError:
        raise PermissionError(
            f"Cannot create {out_dir}: its parent folder is not writable. Create the folder first or choose another."
        ) from None
    return True


def _refuse_linked_subfolders(out_dir: Path, relative_paths: list[str]) -> None:
    """A subfolder of `out_dir` that is a symbolic link would make the export write wherever it points."""
    subfolders = {parent for relative in relative_paths for parent in Path(relative).parents if str(parent) != "."}
    linked = sorted(str(out_dir / folder) for folder in subfolders if (out_dir / folder).is_symlink())
    if linked:
        raise FileExistsError(
            f"{', '.join(linked)} is a symbolic link; export does not write through links. Remove the link (or choose "
            "another out_dir) and rerun."
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
    # The code files import their flat siblings (an encoding of your own: its file imports the Hub-code files).
    needed = {name for code in folder.glob("*.py") for name in get_relative_imports(code)}
    absent = sorted(f"{name}.py" for name in needed if not (folder / f"{name}.py").is_file())
    if absent:
        raise RuntimeError(
            f"The model code in the folder imports {', '.join(absent)}, which save_pretrained did not copy; a Hub user "
            "could not load it. Define the encoding in one file that imports only hf_posenc's Hub-code files."
        )

"""Publishing a trained variant on the Hugging Face Hub.

- `card`: `render_card(config, results)`, the model card, from the template in `model_cards/`.
- `card_results`: `CardResults`, the typed schema of the `results` a card shows, and `normalize_results`.
- `export`: `export(model, tokenizer, out_dir, results)` writes a Hub-ready folder and its manifest;
  `export_run(run_dir, out_dir, probe_results=..., finetune_results=...)` does it for a finished pretraining run.
- `downstream`: `finetune_card_results(FinetuneResult)`, the card's downstream scores of `hf-posenc finetune`.
- `push`: `push(folder, repo_id)` uploads the files export wrote; failures become a `HubPublishError`.
- `manifest`, `repo_id`: the list of exported files, and the Hub's rules for repository ids.
"""

from .card import (
    REPO_ID_PLACEHOLDER,
    TEMPLATE_NAME,
    code_span,
    markdown_text,
    python_string,
    render_card,
    template_path,
)
from .card_results import CardResults, attention_results, normalize_results
from .downstream import finetune_card_results
from .export import export, export_run, is_export_folder
from .manifest import MANIFEST_NAME, ExportManifest, UploadPlan, plan_upload
from .push import DEFAULT_COMMIT_MESSAGE, HubPublishError, push
from .repo_id import check_repo_id

__all__ = [
    "DEFAULT_COMMIT_MESSAGE",
    "MANIFEST_NAME",
    "REPO_ID_PLACEHOLDER",
    "TEMPLATE_NAME",
    "CardResults",
    "ExportManifest",
    "HubPublishError",
    "UploadPlan",
    "attention_results",
    "check_repo_id",
    "code_span",
    "export",
    "export_run",
    "finetune_card_results",
    "is_export_folder",
    "markdown_text",
    "normalize_results",
    "plan_upload",
    "push",
    "python_string",
    "render_card",
    "template_path",
]

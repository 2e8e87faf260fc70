"""The upload of an exported folder to the Hub: `push(folder, repo_id)`.

Only the files `export` listed in the folder's manifest go up (see `hf_posenc.hub.manifest`); anything else in the
folder is left out and named in a warning. Failures become a `HubPublishError` that says what happened and what to
do; the local folder is then exactly as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from pathlib import Path

from ..storage import atomic_path
from .card import REPO_ID_PLACEHOLDER, python_string
from .manifest import MANIFEST_NAME, ExportManifest, UploadPlan, plan_upload
from .repo_id import check_repo_id

DEFAULT_COMMIT_MESSAGE = "Upload hf_posenc model"
CARD_NAME = "README.md"


class HubPublishError(RuntimeError):
    """An upload to the Hub failed. The message says what happened and what to do; the local folder is unchanged.

    Attributes: `repo_id`, `folder`, and `status_code` (the HTTP status, None for network failures).
    """

    def __init__(self, message: str, *, repo_id: str, folder: Path, status_code: int | None = None):
        super().__init__(message)
        self.repo_id = repo_id
        self.folder = folder
        self.status_code = status_code


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
) -> str:
    """Create the Hub model repository `repo_id` if needed and upload the files `export` wrote into `folder`;
    return the repository URL.

    `repo_id` is 'namespace/name' (or 'name' for the token's own namespace), checked by the Hub's rules before
    anything is sent. Only the files listed in the folder's `export_manifest.json` are uploaded, never through a
    symbolic link; other files of the folder are left out, with a UserWarning naming them. A folder without a
    manifest (not written by `export`) is refused.

    The token is `token`, else the usual places (`HF_TOKEN`, then the one saved by `hf auth login`); the endpoint is
    `HF_ENDPOINT` (default https://huggingface.co). `private=True` makes a new repository private (an existing one
    keeps its visibility). The card's usage snippet names the repository it is uploaded to: the placeholder, or the
    id of an earlier push to another repository (with a warning), is replaced by `repo_id` in the folder's README.md
    (and its manifest) before the upload, and stays there. A listed file that is a symbolic or hard link is refused.

    Raises HubPublishError for a missing or rejected token (401), no permission (403), a missing repository (404),
    other Hub errors and network failures. After a failure the local folder is exactly as before; rerun the same
    call to resume (files already uploaded are skipped).
    """
    from huggingface_hub import HfApi, constants, get_token

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; export the model first (`hf-posenc export RUN DIR`).")
    check_repo_id(repo_id)
    plan = plan_upload(folder)
    if not plan.files:
        raise ValueError(
            f"{folder}/{MANIFEST_NAME} lists no files; there is nothing to upload. Export the model again."
        )
    _warn_about(plan)
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
    from .. import __version__

    api = HfApi(token=token, library_name="hf_posenc", library_version=__version__)
    stage = "creating the repository"
    try:
        repo_url = api.create_repo(repo_id, private=True if private else None, exist_ok=True, repo_type="model")
        stage = "uploading to the repository"
        with _repo_id_in_card(folder, plan, repo_url.repo_id):
            # upload_folder rather than one commit of our own: with hf_xet it streams, batches large folders and
            # resumes an interrupted upload. The patterns match exactly the files of the manifest.
            api.upload_folder(
                repo_id=repo_url.repo_id,
                folder_path=folder,
                allow_patterns=[_exact_pattern(relative) for relative in plan.files],
                commit_message=commit_message,
            )
    except Exception as error:
        explained = _explain_failure(error, stage=stage, repo_id=repo_id, folder=folder, endpoint=endpoint)
        if explained is None:
            raise
        raise explained from error
    return str(repo_url)


def _exact_pattern(relative: str) -> str:
    """An fnmatch pattern that matches `relative` only (`*`, `?` and `[` in a file name taken literally)."""
    return re.sub(r"([*?\[])", r"[\1]", relative)


def _warn_about(plan: UploadPlan) -> None:
    if plan.left_out:
        warnings.warn(
            f"Not uploaded from {plan.folder}: {', '.join(plan.left_out)} (push uploads only the files export wrote, "
            f"as listed in {MANIFEST_NAME}).",
            UserWarning,
            stacklevel=3,
        )
    if plan.changed:
        warnings.warn(
            f"Changed in {plan.folder} since the export, uploaded as they are now: {', '.join(plan.changed)}.",
            UserWarning,
            stacklevel=3,
        )


# The snippet's assignment in cards whose manifest does not record the id (exports written before it was recorded).
_SNIPPET_ID = re.compile(rb'^model_id = ("(?:[^"\\\n]|\\.)*")', re.MULTILINE)


def _snippet_literal(card: bytes, manifest: ExportManifest) -> bytes | None:
    """The Python string literal of the repository id that the card's usage snippet names, if the card holds it."""
    if manifest.card_model_id is not None:
        literal = python_string(manifest.card_model_id).encode()
        return literal if literal in card else None
    found = _SNIPPET_ID.search(card)
    return found.group(1) if found else None


@contextlib.contextmanager
def _repo_id_in_card(folder: Path, plan: UploadPlan, repo_id: str):
    """Write `repo_id` over the id the usage snippet names (the placeholder, or the repository of an earlier push) for
    the upload; put the card back if the upload fails, else record its new digest and id in the manifest. Files are
    replaced, never written through; a read-only folder uploads the card as it is."""
    card = folder / CARD_NAME
    original = card.read_bytes() if CARD_NAME in plan.files else b""
    manifest = ExportManifest.load(folder)
    literal = _snippet_literal(original, manifest) if original else None
    wanted = python_string(repo_id).encode()
    if literal is None or literal == wanted:
        yield
        return
    if literal != python_string(REPO_ID_PLACEHOLDER).encode():
        warnings.warn(
            f"The usage snippet of {card} named {literal.decode()} (an earlier push); it now names {wanted.decode()}, "
            "the repository this upload goes to.",
            UserWarning,
            stacklevel=4,
        )
    filled = original.replace(literal, wanted)
    try:
        _replace(card, filled)
    except OSError as error:
        if literal != python_string(REPO_ID_PLACEHOLDER).encode():  # it would name another repository
            raise PermissionError(
                f"{card} names {literal.decode()} in its usage snippet and cannot be rewritten for {repo_id} ({error}); "
                f"export the model again with --repo_id {repo_id} into a folder you can write to."
            ) from None
        yield
        return
    try:
        yield
    except BaseException:
        _replace(card, original)
        raise
    entry = {"sha256": hashlib.sha256(filled).hexdigest(), "size": len(filled)}
    with contextlib.suppress(OSError):
        ExportManifest({**manifest.files, CARD_NAME: entry}, repo_id).save(folder)


def _replace(path: Path, content: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(content)


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

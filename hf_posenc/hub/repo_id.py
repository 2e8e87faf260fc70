"""Hub repository ids, checked by the Hub's rules before anything is written or sent."""

from __future__ import annotations

import re

# The Hub's names are ASCII: huggingface_hub's own validator uses `\w`, which in Python also matches accented and
# other non-ASCII letters that the Hub refuses.
_ASCII_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_repo_id(repo_id: object, *, require_namespace: bool = False, flag: str = "repo_id") -> str:
    """Return `repo_id` if it is a valid Hub model repository id, else raise ValueError saying what is wrong.

    The Hub's rules: 'namespace/name' (or 'name' for the token's own namespace, unless `require_namespace`), each
    part 1 to 96 characters among letters, digits, '-', '_' and '.', not starting or ending with '-' or '.', no
    '--' or '..', and no '.git' at the end. `flag` is how the user gave it (`--repo_id`), for the message.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    form = "'namespace/name'" if require_namespace else "'namespace/name' (or 'name' for your own namespace)"
    if not isinstance(repo_id, str):
        raise ValueError(f"{flag} must be a string like 'your-name/posenc-rope'; got {type(repo_id).__name__}.")
    parts = repo_id.split("/")
    problem = None
    if require_namespace and len(parts) != 2:
        problem = "it needs a namespace: your user or organization name, a slash, then the model's name"
    elif any(not _ASCII_NAME.fullmatch(part) for part in parts):
        problem = "only ASCII letters, digits, '-', '_' and '.' are allowed, with one '/' between namespace and name"
    else:
        try:
            validate_repo_id(repo_id)
        except HFValidationError as error:
            problem = str(error).rstrip(".")
    if problem:
        raise ValueError(
            f"{flag} {repo_id!r} is not a valid Hub repository id ({problem}). Give it as {form}, e.g. "
            "'your-name/posenc-rope-small'."
        )
    return repo_id

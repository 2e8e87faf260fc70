"""Where hf_posenc keeps files, and how it writes them safely.

- `cache_dir()`: downloaded artefacts, built corpora, prepared datasets and the compiled metrics kernel. Created
  private to the user (0700): a cache that others can write to would let them change what this user runs or trains.
- `atomic_path(path)`: write to a temporary file next to `path` and rename it into place, so that no reader (another
  process of `accelerate launch`, say) ever sees a half-written file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path


def cache_dir() -> Path:
    """``$HF_POSENC_CACHE`` when set, else ``~/.cache/hf_posenc``. Read at every call, so changing the variable takes
    effect immediately. Not created here: `private_folder(cache_dir() / ...)` creates what a job needs."""
    configured = os.environ.get("HF_POSENC_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "hf_posenc"


def private_folder(folder: Path) -> Path:
    """Create `folder` (and missing parents) readable and writable by the current user only, whatever the umask, and
    refuse a folder that another user owns or that others can write to."""
    folder = Path(folder)
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing.append(parent)
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:  # another process created it in the meantime
            pass
        os.chmod(created, 0o700)
    check_private(folder)
    return folder


def check_private(path: Path) -> None:
    """Raise PermissionError unless `path` belongs to the current user and no one else can write to it."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise PermissionError(f"{path} is a symbolic link; hf_posenc keeps its cache in real folders. Remove the link.")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise PermissionError(
            f"{path} belongs to another user (uid {info.st_uid}); hf_posenc will not use files others control. "
            "Set HF_POSENC_CACHE to a folder of your own."
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(
            f"{path} can be written by other users (mode {stat.S_IMODE(info.st_mode):o}); run `chmod go-w {path}` "
            "or set HF_POSENC_CACHE to a private folder."
        )


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path, mode: int | None = None):
    """A temporary path next to `path` to write to: on success it gets `mode` (default: what the umask gives a new
    file) and replaces `path` in one rename; on failure it is removed and `path` is untouched. A symbolic link at
    `path` is replaced, never written through."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_current_umask() if mode is None else mode)  # mkstemp creates it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_output(path: Path, mode: str = "w", **open_kwargs):
    """Open a file that replaces `path` once it is written (see `atomic_path`)."""
    with atomic_path(path) as temporary, open(temporary, mode, **open_kwargs) as handle:
        yield handle


def require_model_folder(path: str | os.PathLike, flag: str = "model") -> Path:
    """`path` as a Path if it is a folder written by `save_pretrained` (it holds config.json); else a
    FileNotFoundError that names `flag` (the argument the user gave) and says what to pass instead."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{flag} {folder} is not a folder; give a model folder written by save_pretrained.")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{flag} {folder} is not a Hugging Face model folder (it has no config.json); give a folder written by "
            "save_pretrained."
        )
    return folder

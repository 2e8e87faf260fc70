"""Where hf_posenc keeps files, and how it writes them safely.

- `cache_dir()`: downloaded artefacts, built corpora, prepared datasets and the compiled metrics kernel. Created
  private to the user (0700): a cache that others can write to would let them change what this user runs or trains.
  `check_cache_path(path)` checks a cached file or folder, and every folder from the cache root down to it, before
  it is used.
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
    refuse it unless it and, under the cache root, every folder from the root down to it belong to the current user
    and cannot be written by others (see `check_cache_path`)."""
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
    check_cache_path(folder)
    return folder


def check_cache_path(path: Path, *, owner_uid: int | None = None) -> Path:
    """Return `path` after checking what could have changed it: for a path under `cache_dir()`, the cache root and
    every folder on the way down to `path`, and `path` itself, as far as they exist (elsewhere, `path` alone). Each
    must belong to `owner_uid` (default: the current user), be no symbolic link, and be writable by no one else
    (PermissionError saying how to fix it otherwise).

    Checking the whole way down matters: whoever can write to any folder on it can rename the folder below and put
    one of their own, with a planted SNLI file or corpus, in its place."""
    path = Path(path)
    root = cache_dir()
    try:
        below_root = path.relative_to(root).parts
        chain = [root, *(root.joinpath(*below_root[: depth + 1]) for depth in range(len(below_root)))]
    except ValueError:
        chain = [path]
    for item in chain:
        try:
            info = item.lstat()
        except FileNotFoundError:
            break  # nothing below a missing folder exists yet: private_folder creates it private
        _refuse_unless_private(item, info, owner_uid, unreachable_file_ok=True)
    return path


def check_private(path: Path, *, owner_uid: int | None = None) -> None:
    """Raise PermissionError unless `path` belongs to `owner_uid` (default: the current user), is no symbolic link,
    and no one else can write to it."""
    _refuse_unless_private(Path(path), Path(path).lstat(), owner_uid)


def _refuse_unless_private(
    path: Path, info: os.stat_result, owner_uid: int | None, *, unreachable_file_ok: bool = False
) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise PermissionError(f"{path} is a symbolic link; hf_posenc keeps its cache in real folders. Remove the link.")
    if owner_uid is None and hasattr(os, "getuid"):
        owner_uid = os.getuid()
    if owner_uid is not None and info.st_uid != owner_uid:
        raise PermissionError(
            f"{path} belongs to another user (uid {info.st_uid}); hf_posenc will not use files others control. "
            "Set HF_POSENC_CACHE to a folder of your own."
        )
    writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if unreachable_file_ok and writable_by_others and not stat.S_ISDIR(info.st_mode) and not _others_can_enter(path):
        # A cached file left group-writable by a umask of 002, in a folder only its owner can enter: no one else can
        # reach it to write, and refusing it would refuse every cache such a user writes.
        writable_by_others = 0
    if writable_by_others:
        raise PermissionError(
            f"{path} can be written by other users (mode {stat.S_IMODE(info.st_mode):o}); run `chmod go-w {path}` "
            "or set HF_POSENC_CACHE to a private folder."
        )


def _others_can_enter(file: Path) -> bool:
    try:
        return bool(file.parent.stat().st_mode & (stat.S_IXGRP | stat.S_IXOTH))
    except OSError:
        return True


def read_private_bytes(path: Path, *, owner_uid: int | None = None) -> bytes:
    """The content of the regular file `path`, read through one file descriptor that was checked like
    `check_private` (owner, no other writer) and never through a symbolic link: what is checked is what is read,
    even if the name is switched to another file in between."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise PermissionError(f"{path} is not a regular file; hf_posenc reads only regular files from its cache.")
        _refuse_unless_private(Path(path), info, owner_uid)
        return handle.read()


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


def share_weights_like_config(folder: str | os.PathLike) -> None:
    """Give the ``*.safetensors`` in ``folder`` the mode of its config.json: safetensors writes weights 0600 while
    config.json and the rest follow the umask, so a saved model would be half shared."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        return
    mode = stat.S_IMODE(config_file.stat().st_mode) & 0o666
    for weights in Path(folder).glob("*.safetensors"):
        if not weights.is_symlink():
            weights.chmod(mode)


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

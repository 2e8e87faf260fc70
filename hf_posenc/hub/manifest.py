"""The list of files `export` wrote, kept in the exported folder, and what `push` makes of it.

`export` records every file it wrote, with its size and SHA-256, in `export_manifest.json`. `push` uploads exactly
those files: a `.env`, notes or anything else that lands in the folder later stays on the user's disk, a symbolic
link is never followed (it could point anywhere on the machine), and a hard link is refused (it is another name of a
file elsewhere on the disk, which may be anything). The manifest itself is not uploaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..storage import atomic_path

MANIFEST_NAME = "export_manifest.json"
MANIFEST_FORMAT = 1


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ExportManifest:
    """The files of an exported folder: relative POSIX path -> {"sha256": ..., "size": ...}; and `card_model_id`,
    the repository id that the card's usage snippet names (the placeholder until `push` writes the real one; None in
    manifests written before it was recorded)."""

    files: dict[str, dict[str, object]]
    card_model_id: str | None = None

    @classmethod
    def of(cls, folder: Path, relative_paths: list[str], card_model_id: str | None = None) -> ExportManifest:
        """The manifest of `relative_paths`, hashed as they are in `folder` now."""
        return cls(
            {
                relative: {"sha256": sha256_of(folder / relative), "size": (folder / relative).stat().st_size}
                for relative in sorted(relative_paths)
            },
            card_model_id,
        )

    def edited(self, folder: Path, relative: str) -> bool:
        """Whether `folder / relative` is a regular file that this manifest does not list with its present content:
        a file the user edited since the export, or one that no export wrote."""
        path = Path(folder) / relative
        if path.is_symlink() or not path.is_file():
            return False
        entry = self.files.get(relative)
        return entry is None or sha256_of(path) != entry["sha256"]

    def save(self, folder: Path) -> Path:
        """Write the manifest into `folder`, replacing (never writing through) whatever is at its path."""
        path = Path(folder) / MANIFEST_NAME
        document = {"format": MANIFEST_FORMAT, "written_by": "hf_posenc.hub.export", "files": self.files}
        if self.card_model_id is not None:
            document["card_model_id"] = self.card_model_id
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> ExportManifest:
        """The manifest of `folder`; FileNotFoundError if the folder was not written by `export`, ValueError naming
        what is wrong if the manifest was damaged."""
        path = Path(folder) / MANIFEST_NAME
        if path.is_symlink() or not path.is_file():
            raise FileNotFoundError(
                f"{folder} has no {MANIFEST_NAME}, so it was not written by hf_posenc's export (or by an older version "
                "of it): push uploads only the files export lists. Write the folder with `hf-posenc export RUN DIR` "
                "(or hf_posenc.hub.export) and push that."
            )
        redo = "Export the folder again (`hf-posenc export RUN DIR`)."
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON ({error}). {redo}") from None
        files = document.get("files") if isinstance(document, dict) else None
        if not isinstance(files, dict) or not all(
            isinstance(entry, dict) and isinstance(entry.get("sha256"), str) for entry in files.values()
        ):
            raise ValueError(
                f"{path} must hold {{'files': {{relative path: {{'sha256': ..., 'size': ...}}}}}}; it does not. {redo}"
            )
        for relative in files:
            _check_relative_path(relative, path)
        card_model_id = document.get("card_model_id")
        if card_model_id is not None and not isinstance(card_model_id, str):
            raise ValueError(f"{path}: card_model_id must be a repository id, not {card_model_id!r}. {redo}")
        return cls(files, card_model_id)


@dataclass(frozen=True)
class UploadPlan:
    """What `push` sends from an exported folder, and what it leaves on disk."""

    folder: Path
    files: tuple[str, ...]  # relative POSIX paths, as export wrote them
    left_out: tuple[str, ...]  # everything else in the folder (the manifest aside): stray files, links, a .env ...
    changed: tuple[str, ...]  # listed files whose content changed since the export (a hand-edited README.md)


def plan_upload(folder: Path) -> UploadPlan:
    """Check `folder` against its manifest: every listed file must be there, as a regular file reached without
    following a symbolic link. Raises FileNotFoundError or ValueError saying what is wrong and what to do."""
    folder = Path(folder)
    manifest = ExportManifest.load(folder)
    changed = []
    for relative, entry in manifest.files.items():
        path = _regular_file_inside(folder, relative)
        if sha256_of(path) != entry["sha256"]:
            changed.append(relative)
    listed = set(manifest.files) | {MANIFEST_NAME}
    left_out = sorted(relative for relative in files_in_folder(folder) if relative not in listed)
    return UploadPlan(folder, tuple(manifest.files), tuple(left_out), tuple(changed))


def _check_relative_path(relative: str, manifest_path: Path) -> None:
    path = PurePosixPath(relative)
    # A normalized relative path only: no "/x", "../x", "a/./b", "a//b" or Windows separators.
    if not relative or path.is_absolute() or ".." in path.parts or path.as_posix() != relative or "\\" in relative:
        raise ValueError(
            f"{manifest_path} lists {relative!r}, which is not a plain path inside the folder. Export the folder "
            "again (`hf-posenc export RUN DIR`)."
        )


def _regular_file_inside(folder: Path, relative: str) -> Path:
    """`folder / relative`, after checking that neither it nor a folder on the way is a symbolic link."""
    current = folder
    for part in PurePosixPath(relative).parts:
        current = current / part
        try:
            info = current.lstat()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{folder / relative} is listed in {MANIFEST_NAME} but missing; export the folder again "
                "(`hf-posenc export RUN DIR`)."
            ) from None
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(current)
            where = "outside the folder" if not _inside(folder, current) else "inside the folder"
            raise ValueError(
                f"{current} is a symbolic link (to {target}, {where}); push uploads only the regular files that "
                "export wrote and never follows links. Replace the link with the file, or export the folder again."
            )
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{current} is not a regular file; export the folder again (`hf-posenc export RUN DIR`).")
    if info.st_nlink > 1:
        raise ValueError(
            f"{current} is a hard link ({info.st_nlink} names for one file): its content is also another file of this "
            "disk, which push will not upload unseen. Export the folder again (`hf-posenc export RUN DIR`), which "
            "writes a file of its own, or replace the link with a copy."
        )
    return current


def _inside(folder: Path, link: Path) -> bool:
    return Path(os.path.realpath(link)).is_relative_to(os.path.realpath(folder))


def files_in_folder(folder: Path) -> list[str]:
    """Every file and link under `folder`, as relative POSIX paths, without following links."""
    found = []
    for root, directories, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in files:
            found.append((base / name).relative_to(folder).as_posix())
        for name in directories:
            if (base / name).is_symlink():  # os.walk lists links to folders as folders but does not enter them
                found.append((base / name).relative_to(folder).as_posix() + "/")
    return found

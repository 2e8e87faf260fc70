"""Shared by the tests of hf_posenc.data: a local stand-in for PyPI (pip really runs, offline) and small samples of
the built-in corpora's source files."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path


def offline_pip(monkeypatch, find_links: Path) -> None:
    """Point pip at a closed local port and a local find-links folder, ignoring this machine's pip config."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")  # nothing listens: refused at once
    monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)


def write_wheel(folder: Path, distribution: str, version: str, members: dict[str, str]) -> Path:
    """A minimal valid pure-Python wheel holding `members` (path -> text), for pip to find locally."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{distribution.replace('-', '_')}-{version}"
    wheel = folder / f"{stem}-py3-none-any.whl"
    dist_info = f"{stem}.dist-info"
    files = dict(members)
    files[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    files[f"{dist_info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist_info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{dist_info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


GRIMM_TAB = (
    "ATU Topic\tTitle\tAbstract\tContent\r\n"
    "discrete\tstring\tstring\tstring\r\n"
    "class\t\t\tinclude=True\r\n"
    "\r\n"
    'Magic\tThe Frog\tA frog.\t"The princess dropped her ball.  ""Help!"" she cried, and the frog came."\r\n'
    "Animals\tThe Fox\tA fox.\tThe fox had nine tails.  He lay under the bench.  Then he laughed.\r\n"
)
ANDERSEN_TAB = (
    "Title\tContent\r\n"
    "string\tstring\r\n"
    "\tinclude=True\r\n"
    "The Duckling\tIt was summer in the country.  The duckling was ugly.\r\n"
)
EXPECTED_TALES = [
    ["The princess dropped her ball.", '"Help!" she cried, and the frog came.'],
    ["The fox had nine tails.", "He lay under the bench.", "Then he laughed."],
    ["It was summer in the country.", "The duckling was ugly."],
]

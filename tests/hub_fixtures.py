"""Fixtures of the Hub tests: an exported folder, a copy of it to upload, and a running fake Hub. Test modules load
them with `pytest_plugins = ["hub_fixtures"]`.

No traffic leaves 127.0.0.1: uploads go to tests/fake_hub.py's server, and the token file and caches point into
tmp_path.
"""

import shutil
from pathlib import Path

import pytest
from fake_hub import FakeHub
from hub_helpers import RESULTS, TOKEN, tiny_model, write_png
from huggingface_hub import constants

from hf_posenc.hub import export


@pytest.fixture(scope="module")
def exported(tiny_tokenizer, tmp_path_factory):
    """A rope model exported with the full results and one plot."""
    root = tmp_path_factory.mktemp("exported")
    plot = write_png(root / "locality_symmetry_curves.png")
    model = tiny_model("rope", tiny_tokenizer)
    folder = export(model, tiny_tokenizer, root / "posenc-rope-tiny", {**RESULTS, "plots": [str(plot)]})
    return {"folder": folder, "model": model, "plot": plot}


@pytest.fixture
def export_copy(exported, tmp_path):
    """A private copy of the exported folder, for tests that upload it (push may fill the card's repo id)."""
    return Path(shutil.copytree(exported["folder"], tmp_path / "to-push"))


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    """A running fake Hub that huggingface_hub talks to, a token in HF_TOKEN, and no real token or cache in sight."""
    with FakeHub(token=TOKEN) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # read at import time: patch the live value too
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"))
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield hub
        assert hub.unexpected == [], "the client called endpoints the fake Hub does not know"
        assert hub.invalid_requests == [], "the client sent requests the real Hub would reject"

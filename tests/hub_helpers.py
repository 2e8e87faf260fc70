"""Helpers of the Hub tests: a tiny model, results for a card, a PNG, folder snapshots. The fixtures that use them
are in hub_fixtures.py. Both sit at the top of tests/ so that tests/hub/ and tests/bad_input/test_hub.py can import
them."""

import hashlib
import struct
import zlib
from pathlib import Path

import torch
from conftest import tiny_config
from transformers import AutoModelForMaskedLM

TOKEN = "hf_test_write_token"
TEXTS = ["a man bites a dog .", "the little girl opened the door and walked in .", "a cat sat on the mat ."]

RESULTS = {
    "dataset": "built-in corpus (Wikipedia sample, fairy tales)",
    "train_steps": 1200,
    "max_seq_length": 48,
    "eval_loss": 3.2188,
    "locality": 0.4125,
    "symmetry": 0.8312,
    "symmetry_scale_aware": 0.6217,
    "per_layer": [
        {"layer": 0, "locality": 0.5031, "symmetry": 0.8122, "symmetry_scale_aware": 0.7013},
        {"layer": 1, "locality": 0.3219, "symmetry": 0.8502, "symmetry_scale_aware": 0.5421},
    ],
    "measured_on": "16 validation sequences of 48 tokens",
    "probes": {
        "original": 0.8125,
        "shuffle-3": 0.8031,
        "shuffle-4": 0.7968,
        "random": 0.7625,
        "role-swap": 0.3125,
        "still_entailment": 0.6875,
    },
}


def tiny_model(variant, tokenizer, **overrides):
    torch.manual_seed(0)
    config = tiny_config(variant, vocab_size=len(tokenizer), **overrides)
    return AutoModelForMaskedLM.from_config(config).eval()


def write_png(path: Path) -> Path:
    """A real 2x2 grey PNG, written with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"\x00\x80\x80" * 2)
    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


def folder_snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every regular file under `folder`."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def mlm_logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits

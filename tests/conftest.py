import os

# huggingface_hub reads these once, at import: set them before anything imports it. No test talks to the real Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import hf_posenc  # noqa: E402

TINY = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=48,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    # small tables keep every clipping/bucketing branch reachable at test lengths
    max_relative_position=8,
    relative_attention_num_buckets=16,
    relative_attention_max_distance=32,
    position_buckets=8,
    max_relative_positions=32,
    cope_max_positions=8,
)


def tiny_config(variant: str, **overrides) -> hf_posenc.PosEncConfig:
    """A tiny config of `variant`; options of other variants in TINY are dropped."""
    config_class = hf_posenc.VARIANTS[variant]
    accepted = set(hf_posenc.PosEncConfig().to_dict()) | set(config_class().to_dict())
    settings = {key: value for key, value in TINY.items() if key in accepted}
    return hf_posenc.create_config(variant, **{**settings, **overrides})


ALL = list(hf_posenc.VARIANTS)

# The Hub code: the files save_pretrained copies next to every saved model.
HUB_CODE_FILES = (
    "configuration_posenc.py",
    "modeling_posenc.py",
    "positional.py",
    "positional_base.py",
    "positional_bias.py",
    "positional_gated.py",
    "positional_contextual.py",
    "positional_flex.py",
    "positional_learned_rotation.py",
    "positional_rotary.py",
)


def tiny_mlm(variant: str, **overrides):
    """A freshly initialised tiny masked LM of `variant` (vocabulary of 120 tokens)."""
    from transformers import AutoModelForMaskedLM

    return AutoModelForMaskedLM.from_config(tiny_config(variant, **overrides))


def random_ids(batch: int = 2, length: int = 20, vocab: int = 120) -> torch.Tensor:
    """Token ids that avoid the five special tokens."""
    return torch.randint(5, vocab, (batch, length))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


SENTENCES = [
    "the cat sat on the mat while the dog slept by the door",
    "a man is playing a guitar on the corner of a busy street",
    "two women are walking along the beach as the sun sets",
    "the children laughed when the small dog chased the red ball",
]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A real WordPiece tokenizer trained on a few sentences (the same code path as pretraining)."""
    from hf_posenc import data

    return data.train_wordpiece_tokenizer([SENTENCES] * 30, vocab_size=120, min_frequency=1)


def run_without_hf_posenc(script: str, arguments: list[str], folder) -> dict:
    """Run `script` in a fresh Python process that cannot import hf_posenc (as a Hub user loads a model with
    trust_remote_code), with `arguments`, in `folder`; return the JSON its last printed line holds."""
    result = subprocess.run(
        [sys.executable, "-c", 'import sys; sys.modules["hf_posenc"] = None\n' + script, *arguments],
        capture_output=True,
        text=True,
        cwd=folder,
        env={"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(folder / "modules"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def tensorboard_tags(output_dir) -> dict[str, list[int]]:
    """Every scalar tag in the TensorBoard event files under ``output_dir/runs``, with the steps it was written at."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[int]] = {}
    for events in sorted(output_dir.glob("runs/**/events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found.setdefault(tag, []).extend(event.step for event in accumulator.Scalars(tag))
    return found

"""Models saved before an encoding's definition changed keep computing what they computed: a config stores the
revision of the encodings it was built with (`posenc_revision`), a config.json without one is revision 1, and each
encoding follows its model's revision. The fixtures in pre_revision/ were saved by hf_posenc before revisions
existed (make_fixtures.py, run at commit 6f71d41), with their outputs."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import random_ids, run_without_hf_posenc, tiny_config, tiny_mlm
from safetensors.torch import load_file
from transformers import AutoModel

import hf_posenc
from hf_posenc.configuration_posenc import POSENC_REVISION

FIXTURES = Path(__file__).parent / "pre_revision"
SAVED_BEFORE_REVISIONS = sorted(folder.name for folder in FIXTURES.iterdir() if folder.is_dir())


def expected_outputs(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "expected_outputs.safetensors")


def test_the_fixtures_cover_every_variant_whose_computation_changed():
    assert SAVED_BEFORE_REVISIONS == ["deberta", "fire", "kerple", "sinusoidal", "t5", "tupe"]


@pytest.mark.parametrize("variant", SAVED_BEFORE_REVISIONS)
def test_a_model_saved_before_revisions_computes_what_it_computed(variant, tmp_path):
    folder = FIXTURES / variant
    assert "posenc_revision" not in json.loads((folder / "config.json").read_text())
    model = AutoModel.from_pretrained(folder).eval()
    assert model.config.posenc_revision == 1
    expected = expected_outputs(folder)
    with torch.no_grad():
        hidden = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"]).last_hidden_state
    torch.testing.assert_close(hidden, expected["last_hidden_state"], rtol=1e-5, atol=1e-5)

    # Saved again by today's code, the revision and the forms it implies are written down, not lost.
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["posenc_revision"] == 1
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        again = reloaded(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"]).last_hidden_state
    torch.testing.assert_close(again, expected["last_hidden_state"], rtol=1e-5, atol=1e-5)


def test_the_same_weights_compute_differently_under_the_current_revision():
    """The fixtures exercise what changed: loaded as revision 2, every one of them computes something else."""
    for variant in SAVED_BEFORE_REVISIONS:
        folder = FIXTURES / variant
        if variant in ("fire", "tupe"):  # their parameters changed shape or name: no revision-2 load of old weights
            continue
        saved = json.loads((folder / "config.json").read_text())
        config = hf_posenc.VARIANTS[variant](**{**saved, "posenc_revision": 2})
        model = AutoModel.from_pretrained(folder, config=config).eval()
        expected = expected_outputs(folder)
        with torch.no_grad():
            hidden = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"])
        difference = (hidden.last_hidden_state - expected["last_hidden_state"]).abs().max().item()
        if variant == "kerple":  # only the initialisation and the gradient changed: same outputs
            assert difference < 1e-5
        else:
            assert difference > 1e-3, variant


def test_new_configs_are_of_the_current_revision_and_store_it():
    config = tiny_config("deberta")
    assert config.posenc_revision == POSENC_REVISION == 2
    assert config.to_dict()["posenc_revision"] == 2
    assert config.deberta_position_to_content == "official"
    assert tiny_config("sinusoidal").sinusoidal_scale_embeddings is True
    legacy = tiny_config("deberta", posenc_revision=1)
    assert legacy.deberta_position_to_content == "paper"
    assert tiny_config("deberta", posenc_revision=1, deberta_position_to_content="official").posenc_revision == 1


def test_a_revision_from_a_newer_hf_posenc_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="posenc_revision=3: this hf_posenc knows revisions 1 to 2.*pip install -U"):
        tiny_config("rope", posenc_revision=3)


def test_the_revision_survives_a_dict_round_trip():
    for revision in (1, 2):
        config = tiny_config("fire", posenc_revision=revision)
        assert type(config).from_dict(config.to_dict()).posenc_revision == revision


CLEAN_PROCESS = r"""
import json, sys
import torch
from safetensors.torch import load_file
from transformers import AutoModel
report = {}
for folder in sys.argv[1:]:
    expected = load_file(folder + "/expected_outputs.safetensors")
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        hidden = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"]).last_hidden_state
    report[folder] = (hidden - expected["last_hidden_state"]).abs().max().item()
print(json.dumps(report))
"""


def test_the_hub_code_saved_today_computes_old_models_as_they_were(tmp_path):
    """An old model re-exported with today's Hub code and loaded without hf_posenc keeps its outputs."""
    folders = []
    for variant in SAVED_BEFORE_REVISIONS:
        AutoModel.from_pretrained(FIXTURES / variant).save_pretrained(tmp_path / variant)
        shutil.copy(FIXTURES / variant / "expected_outputs.safetensors", tmp_path / variant)
        folders.append(str(tmp_path / variant))
    differences = run_without_hf_posenc(CLEAN_PROCESS, folders, tmp_path)
    assert all(difference < 1e-5 for difference in differences.values()), differences


@pytest.mark.parametrize(
    "variant, overrides",
    [
        ("deberta", {"deberta_position_to_content": "paper"}),
        ("sinusoidal", {"sinusoidal_scale_embeddings": False}),
        ("attenuated", {"attenuation_form": "probability", "attenuation_strength": 0.5}),
        ("attenuated", {"attenuation_form": "learned_table"}),
        ("tupe", {"posenc_revision": 1}),
        ("fire", {"posenc_revision": 1}),
    ],
)
def test_every_form_saves_and_reloads_as_itself(variant, overrides, tmp_path):
    model = tiny_mlm(variant, **overrides).eval()
    for parameter in model.posenc.position.parameters():
        torch.nn.init.normal_(parameter)  # reloading must restore trained values, not re-initialise them
    model.save_pretrained(tmp_path)
    reloaded = type(model).from_pretrained(tmp_path).eval()
    for key, value in overrides.items():
        assert getattr(reloaded.config, key) == value
    ids = random_ids()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, rtol=0, atol=0)
    assert hf_posenc.VARIANTS[variant] is type(reloaded.config)

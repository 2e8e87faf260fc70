"""The variant registry, the Auto classes of every head, saving, and loading as remote code without hf_posenc."""

import json

import pytest
import torch
import transformers
from conftest import ALL, HUB_CODE_FILES, random_ids, run_without_hf_posenc, tiny_config, tiny_mlm
from transformers import AutoConfig, AutoModelForMaskedLM

import hf_posenc


def test_registry_names_every_variant_once():
    assert ALL == [
        "nope",
        "learned",
        "sinusoidal",
        "shaw",
        "huang",
        "t5",
        "alibi",
        "rope",
        "deberta",
        "tupe",
        "kerple",
        "fire",
        "attenuated",
        "forgetting",
        "cope",
        "sandwich",
        "comrope",
    ]
    assert set(hf_posenc.ENCODINGS) == set(ALL)
    for name, config_class in hf_posenc.VARIANTS.items():
        encoding = hf_posenc.ENCODINGS[name]
        assert config_class.model_type == f"posenc_{name}"
        assert encoding.route in {"none", "embed", "rotate", "bias", "score"}
        assert encoding.paper and f"Route: {encoding.route}" in " ".join(encoding.__doc__.split())


@pytest.mark.parametrize("variant", ALL)
def test_auto_classes_build_every_variant(variant):
    settings = {
        k: v for k, v in tiny_config(variant).to_dict().items() if k not in ("model_type", "transformers_version")
    }
    config = AutoConfig.for_model(f"posenc_{variant}", **settings)
    assert type(config) is hf_posenc.VARIANTS[variant]
    classes = hf_posenc.model_classes(variant)
    assert set(classes) == set(hf_posenc.HEADS.values())
    for auto_name, model_class in classes.items():
        model = getattr(transformers, auto_name).from_config(config)
        assert type(model) is model_class


def test_save_and_reload_in_process_gives_identical_outputs(tmp_path):
    for variant in ALL:
        overrides = {"attenuation_learnable": True} if variant == "attenuated" else {}
        model = tiny_mlm(variant, **overrides).eval()
        model.save_pretrained(tmp_path / variant)
        reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path / variant).eval()
        ids = random_ids()
        torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, atol=0, rtol=0)
        assert sorted(p.name for p in (tmp_path / variant).iterdir()) == sorted(
            ["config.json", "model.safetensors", *HUB_CODE_FILES]
        )


CLEAN_PROCESS_LOAD = r"""
import json, sys
import torch
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification
from transformers import AutoModelForTokenClassification
report = {}
for folder in sys.argv[1:]:
    reference = torch.load(folder + "/reference.pt")
    model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
    assert "hf_posenc" not in type(model).__module__, type(model).__module__
    with torch.no_grad():  # same autograd mode as the reference, so SDPA picks the same kernel
        same_logits = torch.equal(model(reference["ids"]).logits, reference["logits"])
        base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        same_hidden = torch.equal(base(reference["ids"]).last_hidden_state, reference["hidden"])
    classifier = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True, num_labels=3)
    tagger = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True, num_labels=5)
    with torch.no_grad():
        tags = tagger(reference["ids"]).logits.shape[-1]
    report[folder] = [type(model).__name__, same_logits, same_hidden, type(classifier).__name__, type(tagger).__name__, tags]
print(json.dumps(report))
"""


def test_every_variant_loads_with_trust_remote_code_where_hf_posenc_is_not_importable(tmp_path):
    folders = []
    for variant in ALL:
        model = tiny_mlm(variant).eval()
        folder = tmp_path / variant
        model.save_pretrained(folder)
        ids = random_ids()
        with torch.no_grad():
            torch.save(
                {"ids": ids, "logits": model(ids).logits, "hidden": model.posenc(ids).last_hidden_state},
                folder / "reference.pt",
            )
        folders.append(str(folder))
    report = run_without_hf_posenc(CLEAN_PROCESS_LOAD, folders, tmp_path)
    for variant, folder in zip(ALL, folders):
        prefix = hf_posenc.VARIANTS[variant].__name__.removesuffix("Config")
        assert report[folder] == [
            f"{prefix}ForMaskedLM",
            True,
            True,
            f"{prefix}ForSequenceClassification",
            f"{prefix}ForTokenClassification",
            5,
        ]


def test_saved_config_maps_all_auto_classes(tmp_path):
    tiny_mlm("kerple").save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_posenc.PosEncKerpleConfig",
        "AutoModel": "modeling_posenc.PosEncKerpleModel",
        "AutoModelForMaskedLM": "modeling_posenc.PosEncKerpleForMaskedLM",
        "AutoModelForSequenceClassification": "modeling_posenc.PosEncKerpleForSequenceClassification",
        "AutoModelForTokenClassification": "modeling_posenc.PosEncKerpleForTokenClassification",
    }
    assert set(auto_map) - {"AutoConfig"} == set(hf_posenc.HEADS.values())


def test_hub_code_imports_only_torch_transformers_and_itself():
    """Hub code may import torch, transformers, the standard library and its own flat siblings, nothing a Hub user
    would have to install."""
    import ast
    import pathlib
    import sys

    package = pathlib.Path(hf_posenc.__file__).parent
    # encoding_registry.py goes only into the folders of models whose encoding a user registered (plugins.py).
    hub_code = (*HUB_CODE_FILES, "encoding_registry.py")
    for name in hub_code:
        tree = ast.parse((package / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {"." if node.level else node.module.split(".")[0]}
            else:
                continue
            assert roots <= {"torch", "transformers", "."} | set(sys.stdlib_module_names), (name, roots)
            if "." in roots:
                assert f"{node.module}.py" in hub_code, (name, node.module)  # a sibling that is copied too

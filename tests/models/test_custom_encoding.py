"""Your own encoding through `hf_posenc.register_encoding`: a variant like the built-in ones, a saved model that loads
without hf_posenc or the user's module, the errors of a malformed encoding, and the worked example end to end."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from conftest import run_without_hf_posenc
from transformers import AutoConfig, AutoModelForMaskedLM

import hf_posenc
from hf_posenc import plugins

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)

SLOPE_ENCODING = '''"""A test encoding: a learned slope per head on |i - j|."""

import torch
from torch import nn

from hf_posenc import register_encoding
from hf_posenc.positional_base import signed_distance
from hf_posenc.positional_bias import BiasEncoding


@register_encoding("NAME", parameters={"NAME_slope": 0.5})
class SlopeBias(BiasEncoding):
    """-slope_h |i - j|. Route: bias. Symmetric by construction."""

    paper = "a test encoding"

    def __init__(self, config):
        super().__init__(config)
        self.slope = nn.Parameter(torch.full((self.num_heads,), float(config.NAME_slope)))

    def bias(self, seq_len, device):
        return -self.slope[:, None, None] * signed_distance(seq_len, device).abs().float()[None]
'''


@pytest.fixture
def restore_registries(tmp_path):
    """Each test's encodings leave the registries (and HF_POSENC_ENCODINGS) as they were."""
    variants, encodings = dict(hf_posenc.VARIANTS), dict(hf_posenc.ENCODINGS)
    environment = os.environ.get(plugins.ENVIRONMENT_VARIABLE)
    yield
    for registry, saved in ((hf_posenc.VARIANTS, variants), (hf_posenc.ENCODINGS, encodings)):
        registry.clear()
        registry.update(saved)
    if environment is None:
        os.environ.pop(plugins.ENVIRONMENT_VARIABLE, None)
    else:
        os.environ[plugins.ENVIRONMENT_VARIABLE] = environment
    for name, module in list(sys.modules.items()):
        if module is not None and str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


def write_module(tmp_path: Path, stem: str, text: str) -> Path:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(text)
    return path


def import_encoding(tmp_path: Path, stem: str, text: str) -> Path:
    path = write_module(tmp_path, stem, text)
    hf_posenc.import_encoding_modules([str(path)])
    return path


def test_registered_encoding_is_a_variant_like_the_builtin_ones(tmp_path, restore_registries):
    import_encoding(tmp_path, "slope_bias", SLOPE_ENCODING.replace("NAME", "slope"))
    assert "slope" in hf_posenc.VARIANTS and hf_posenc.ENCODINGS["slope"].name == "slope"
    config = AutoConfig.for_model("posenc_slope", **TINY, slope_slope=0.25)
    assert type(config) is hf_posenc.VARIANTS["slope"] and config.slope_slope == 0.25
    for auto_name, model_class in hf_posenc.model_classes("slope").items():
        assert type(getattr(transformers, auto_name).from_config(config)) is model_class
    model = AutoModelForMaskedLM.from_config(config)
    ids = torch.randint(5, 120, (2, 12))
    model(input_ids=ids, labels=ids).loss.backward()
    assert model.posenc.position.slope.grad.abs().sum() > 0  # the encoding's parameter trains
    with pytest.raises(ValueError, match=r"slope_slope \(a parameter of the 'slope' encoding\) must be float"):
        hf_posenc.create_config("slope", slope_slope="steep")
    assert str(tmp_path / "src" / "slope_bias.py") in os.environ[plugins.ENVIRONMENT_VARIABLE]


CLEAN_LOAD = r"""
import json, sys
sys.modules["slope_bias"] = None
sys.modules["slope_module"] = None
import torch
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification
from transformers import AutoModelForTokenClassification
folder = sys.argv[1]
reference = torch.load(folder + "/reference.pt")
model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
with torch.no_grad():
    same = torch.equal(model(reference["ids"]).logits, reference["logits"])
heads = [type(auto.from_pretrained(folder, trust_remote_code=True, num_labels=3)).__name__
         for auto in (AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification)]
print(json.dumps([type(model).__name__, type(model).__module__.split(".")[-1], same, heads]))
"""


@pytest.mark.parametrize("registered_in_its_file", [True, False])
def test_export_loads_without_hf_posenc_or_the_users_module(
    tmp_path, restore_registries, tiny_tokenizer, registered_in_its_file
):
    from hf_posenc.hub import export

    if registered_in_its_file:
        import_encoding(tmp_path, "slope_bias", SLOPE_ENCODING.replace("NAME", "slope"))
        stem = "slope_bias"
    else:  # the class's file does not register it: the saved copy gets the registration call
        text = SLOPE_ENCODING.replace("NAME", "slope").replace('@register_encoding("slope", ', "# ")
        import_encoding(tmp_path, "slope_module", text)
        hf_posenc.register_encoding("slope", sys.modules["slope_module"].SlopeBias, parameters={"slope_slope": 0.5})
        stem = "slope_module"
    model = AutoModelForMaskedLM.from_config(hf_posenc.create_config("slope", **TINY, slope_slope=0.3)).eval()
    folder = export(model, tiny_tokenizer, tmp_path / "export")
    ids = torch.randint(5, 120, (2, 16))
    with torch.no_grad():
        torch.save({"ids": ids, "logits": model(ids).logits}, folder / "reference.pt")
    saved = (folder / f"{stem}.py").read_text()
    assert "from .positional_bias import BiasEncoding" in saved
    assert not [line for line in saved.splitlines() if line.startswith(("from hf_posenc", "import hf_posenc"))]
    assert json.loads((folder / "config.json").read_text())["auto_map"]["AutoModelForMaskedLM"] == (
        f"{stem}.PosEncSlopeForMaskedLM"
    )
    report = run_without_hf_posenc(CLEAN_LOAD, [str(folder)], tmp_path)
    assert report == [
        "PosEncSlopeForMaskedLM",
        stem,
        True,
        ["PosEncSlopeModel", "PosEncSlopeForSequenceClassification", "PosEncSlopeForTokenClassification"],
    ]


BROKEN_ENCODINGS = {
    "a built-in name": (
        SLOPE_ENCODING.replace('"NAME"', '"alibi"').replace("NAME", "x"),
        "'alibi' is a built-in variant of hf_posenc; choose another name",
    ),
    "a missing method": (
        SLOPE_ENCODING.replace("NAME", "nobias").replace("def bias(", "def bias_of("),
        r"SlopeBias has route 'bias' but does not define bias\(\); implement it",
    ),
    "a bias of the wrong shape": (
        SLOPE_ENCODING.replace("NAME", "flat").replace("[None]", "").replace("self.slope[:, None, None]", "1.0"),
        r"SlopeBias.bias\(seq_len, device\) returned \(7, 7\) for 4 heads and 7 tokens; the 'bias' route needs "
        r"\[heads, T, T\] = \[4, 7, 7\]",
    ),
    "an import a Hub user lacks": (
        "import yaml\n" + SLOPE_ENCODING.replace("NAME", "yamlish"),
        "imports yaml, which a Hub user loading the model with trust_remote_code would have to install",
    ),
    "a part of hf_posenc that is not Hub code": (
        "from hf_posenc.analysis import metrics\n" + SLOPE_ENCODING.replace("NAME", "metricky"),
        "imports hf_posenc.analysis, which a saved model does not carry",
    ),
    "hf_posenc imported as a package": (
        "import hf_posenc\n" + SLOPE_ENCODING.replace("NAME", "packaged"),
        "imports hf_posenc as a package, which a saved model does not carry",
    ),
    "a parameter that clashes with BERT's": (
        SLOPE_ENCODING.replace('"NAME_slope": 0.5', '"hidden_size": 3').replace("NAME", "clash"),
        "parameter 'hidden_size' is already a field of every hf_posenc config",
    ),
    "a list default": (
        SLOPE_ENCODING.replace('"NAME_slope": 0.5', '"NAME_slope": [0.5]').replace("NAME", "listy"),
        "has the default \\[0.5\\]; a default must be a bool, int, float or str",
    ),
}


@pytest.mark.parametrize("problem", BROKEN_ENCODINGS)
def test_malformed_encoding_is_refused_at_registration_in_one_line(tmp_path, restore_registries, problem):
    text, message = BROKEN_ENCODINGS[problem]
    before = dict(hf_posenc.VARIANTS)
    with pytest.raises(ValueError, match=message) as caught:
        import_encoding(tmp_path, "broken_encoding", text)
    assert "\n" not in str(caught.value) and str(caught.value).startswith("register_encoding(")
    assert hf_posenc.VARIANTS == before  # nothing half-registered


def test_a_name_taken_by_another_encoding_is_refused(tmp_path, restore_registries):
    import_encoding(tmp_path, "first_slope", SLOPE_ENCODING.replace("NAME", "slope"))
    with pytest.raises(ValueError, match="'slope' is already the name of SlopeBias from first_slope"):
        import_encoding(tmp_path, "second_slope", SLOPE_ENCODING.replace("NAME", "slope"))


def test_missing_module_names_the_fix(tmp_path, restore_registries):
    with pytest.raises(FileNotFoundError, match="does not exist; give the path of the .py file"):
        hf_posenc.import_encoding_modules([str(tmp_path / "absent.py")])
    with pytest.raises(ValueError, match="no module named 'no_such_encodings'.*or put its folder on PYTHONPATH"):
        hf_posenc.import_encoding_modules(["no_such_encodings"])


def test_study_spec_names_the_module(tmp_path, restore_registries):
    from hf_posenc.study.spec import SpecError, load_spec

    write_module(tmp_path, "slope_bias", SLOPE_ENCODING.replace("NAME", "slope"))
    spec_file = tmp_path / "src" / "study.yaml"
    spec_file.write_text(
        "encoding_modules: [slope_bias.py]\npretraining: {steps: 10}\nruns:\n  - {variant: slope, settings: {slope_slope: 0.1}}\n"
    )
    spec = load_spec(spec_file)
    assert [(run.variant, run.settings) for run in spec.runs] == [("slope", {"slope_slope": 0.1})]
    spec_file.write_text("encoding_modules: [missing.py]\npretraining: {steps: 10}\nruns: [{variant: slope}]\n")
    with pytest.raises(SpecError, match="line 1: the encoding module .*missing.py does not exist"):
        load_spec(spec_file)


def test_pretrain_command_trains_an_encoding_named_in_the_environment(tmp_path):
    """`hf-posenc pretrain --variant gaussian_window` with the example's file in HF_POSENC_ENCODINGS, its parameter
    as a flag, in a process of its own."""
    environment = {
        **os.environ,
        plugins.ENVIRONMENT_VARIABLE: str(ROOT / "examples" / "my_encoding" / "gaussian_window.py"),
    }
    command = [sys.executable, "-m", "hf_posenc", "pretrain", "--variant", "gaussian_window"]
    command += ["--gaussian_window_init_width", "2.0", "--corpus", "stdlib", "--vocab_size", "1000"]
    command += [
        "--max_seq_length",
        "32",
        "--config_overrides",
        ",".join(f"{k}={v}" for k, v in TINY.items() if k != "vocab_size"),
    ]
    command += [
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--max_eval_samples",
        "4",
        "--report_to",
        "none",
    ]
    command += ["--posenc_metrics", "false", "--disable_tqdm", "true", "--output_dir", str(tmp_path / "run")]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model_type"] == "posenc_gaussian_window" and config["gaussian_window_init_width"] == 2.0
    assert (tmp_path / "run" / "gaussian_window.py").is_file()


def test_worked_example_end_to_end(tmp_path):
    """examples/custom_encoding.py: register, pretrain on the stdlib corpus, measure, export, and load the export in
    a process where hf_posenc and the encoding's module cannot be imported."""
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "custom_encoding.py"),
            "--max_steps",
            "6",
            "--output_dir",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["variant"] == "gaussian_window" and summary["train_steps"] == 6
    assert 0 <= summary["locality"] <= 1 and summary["symmetry"] is not None
    assert summary["clean_process_class"] == "PosEncGaussianWindowForMaskedLM"
    assert summary["clean_process_same_logits"] is True
    assert "gaussian_window.py" in summary["export_files"] and "positional_bias.py" in summary["export_files"]
    manifest = json.loads((tmp_path / "run-hub" / "export_manifest.json").read_text())
    assert "gaussian_window.py" in json.dumps(manifest)  # push uploads the encoding's file


WINDOW_SCORES = '''"""A test encoding: one learned vector per clipped distance, dotted with the query (Shaw's form, shared by layers)."""

import torch
from torch import nn

from hf_posenc import register_encoding
from hf_posenc.positional_base import RelativeScoreEncoding, RelativeScores, relative_distances


@register_encoding("window", parameters={"window_size": 3})
class WindowScores(RelativeScoreEncoding):
    """q_i.r_clip(i - j). Route: score."""

    paper = "a test encoding"
    symmetric = False

    def __init__(self, config):
        super().__init__(config)
        self.window = config.window_size
        self.vectors = nn.Parameter(torch.randn(2 * self.window + 1, self.head_dim))

    def layer_context(self, seq_len, device, dtype):
        return relative_distances(seq_len, device).clamp(-self.window, self.window) + self.window

    def relative_scores(self, query, key, layer_index, rows):
        return RelativeScores(query @ self.vectors.T.to(query.dtype), rows)
'''


def test_a_relative_score_encoding_runs_on_flex_attention_as_on_eager(tmp_path, restore_registries):
    """A `RelativeScoreEncoding` gives eager attention and FlexAttention the same scores (positional_flex.py)."""
    if not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        pytest.skip("FlexAttention's CPU kernel is compiled to C++ and no C++ compiler (g++) is installed")
    import_encoding(tmp_path, "window_scores", WINDOW_SCORES)
    model = AutoModelForMaskedLM.from_config(hf_posenc.create_config("window", **TINY)).eval()
    ids, mask = torch.randint(5, 120, (2, 16)), torch.ones(2, 16, dtype=torch.long)
    mask[1, 10:] = 0
    with torch.no_grad():
        model.set_attn_implementation("eager")
        eager = model(input_ids=ids, attention_mask=mask).logits
        model.set_attn_implementation("flex_attention")
        flex = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(flex[mask.bool()], eager[mask.bool()], atol=1e-5, rtol=1e-5)


def test_a_relative_score_encoding_without_relative_scores_is_refused(tmp_path, restore_registries):
    text = WINDOW_SCORES.replace("def relative_scores(", "def scores_of(")
    with pytest.raises(ValueError, match=r"WindowScores has route 'score' but does not define relative_scores\(\)"):
        import_encoding(tmp_path, "window_scores", text)

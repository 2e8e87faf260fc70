"""What hf_posenc trusts: the metrics kernel cache (a shared library is code that runs when loaded) and the model
folders `hf-posenc analyze` loads (an auto_map in config.json points at Python files that transformers would run)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess

import pytest
import torch
from conftest import tiny_config
from transformers import AutoModelForMaskedLM, BertConfig, BertModel

from hf_posenc import cli
from hf_posenc.analysis import kernel, metrics

HAS_C_COMPILER = any(shutil.which(name) for name in ("cc", "gcc", "clang"))
needs_compiler = pytest.mark.skipif(not HAS_C_COMPILER, reason="no C compiler to build the kernel")
ATTENTION = torch.softmax(torch.randn(6, 12, 12, generator=torch.Generator().manual_seed(1)), dim=-1)

# --------------------------------------------------------------------------------------------------------
# The metrics kernel cache
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory):
    """A cache folder holding a kernel built once for this module (each test copies it to a path of its own that no
    process has loaded a library from, so that a library planted there would really be loaded)."""
    cache = tmp_path_factory.mktemp("built_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_POSENC_CACHE", str(cache))
        patch.setenv("HF_POSENC_METRICS_KERNEL", "require")
        metrics.locality(ATTENTION)
    return cache


@pytest.fixture
def cache(built_cache, tmp_path, monkeypatch):
    """A fresh copy of the built cache, used by the metrics from now on (in `require` mode unless changed)."""
    copy = tmp_path / "cache"
    shutil.copytree(built_cache, copy)
    monkeypatch.setenv("HF_POSENC_CACHE", str(copy))
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    monkeypatch.setattr(kernel, "_warned", set())
    kernel.forget_loaded()
    yield copy
    kernel.forget_loaded()


def recorded(cache) -> tuple[str, os.PathLike]:
    """The digest and the library that the build record names."""
    (record,) = (cache / "kernels").glob("attention_stats-*.sha256")
    digest, name = record.read_text().split()
    return digest, cache / "kernels" / name


def pytorch_values(monkeypatch) -> torch.Tensor:
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "off")
    values = metrics.symmetry(ATTENTION)
    return values


def assert_rebuilt(cache, caplog, reason: str) -> None:
    digest, library = recorded(cache)
    assert hashlib.sha256(library.read_bytes()).hexdigest() == digest
    assert stat.S_IMODE(library.stat().st_mode) == 0o700 and not library.is_symlink()
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "rebuilt its metrics kernel" in warnings[0] and reason in warnings[0], warnings


@needs_compiler
def test_a_library_replaced_by_garbage_is_rebuilt(cache, caplog, monkeypatch):
    _, library = recorded(cache)
    library.write_bytes(b"this is not a shared library")
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        values = metrics.symmetry(ATTENTION)
    assert_rebuilt(cache, caplog, "is not the library that was built")
    torch.testing.assert_close(values, pytorch_values(monkeypatch), rtol=0, atol=1e-12)


@needs_compiler
def test_another_library_in_its_place_is_never_loaded(cache, caplog, tmp_path):
    marker = tmp_path / "constructor_ran"
    source = tmp_path / "other.c"
    source.write_text(
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void run_on_load(void) {\n"
        f'    FILE *file = fopen("{marker}", "w"); if (file) {{ fputs("ran", file); fclose(file); }}\n'
        "}\n"
        "long posenc_attention_stats(void) { return -1; }\n"
    )
    _, library = recorded(cache)
    compiler = next(name for name in ("cc", "gcc", "clang") if shutil.which(name))
    subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        metrics.locality(ATTENTION)
    assert not marker.exists(), "the planted library was loaded"
    assert_rebuilt(cache, caplog, "is not the library that was built")


@needs_compiler
def test_a_recorded_library_that_does_not_load_is_rebuilt_once(cache, caplog):
    digest, library = recorded(cache)
    garbage = b"\x7fELF but not really"
    library.write_bytes(garbage)  # ... with a record that matches it, so only loading it can tell
    (record,) = (cache / "kernels").glob("*.sha256")
    record.write_text(f"{hashlib.sha256(garbage).hexdigest()}  {library.name}\n")
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        metrics.locality(ATTENTION)
    assert_rebuilt(cache, caplog, "does not load")
    assert recorded(cache)[0] == digest


@needs_compiler
def test_a_library_that_never_loads_falls_back_to_pytorch_with_one_warning(cache, caplog, monkeypatch, tmp_path):
    calls = tmp_path / "compiler_calls"
    compiler = tmp_path / "garbage-cc"  # "builds" a library that is not one
    compiler.write_text(
        f'#!/bin/sh\necho call >> "{calls}"\n'
        'while [ "$#" -gt 0 ]; do if [ "$1" = "-o" ]; then echo garbage > "$2"; fi; shift; done\n'
    )
    compiler.chmod(0o755)
    monkeypatch.setenv("CC", str(compiler))
    monkeypatch.setenv("HF_POSENC_CACHE", str(tmp_path / "other_cache"))
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "auto")
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        values = [metrics.symmetry(ATTENTION) for _ in range(3)]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "pure-PyTorch path" in warnings[0] and "does not load" in warnings[0]
    assert calls.read_text().count("call") == 1  # not rebuilt at every call
    torch.testing.assert_close(values[0], pytorch_values(monkeypatch), rtol=0, atol=0)
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    with pytest.raises(kernel.KernelUnavailable, match="require, but the freshly built .* does not load"):
        metrics.symmetry(ATTENTION)


@needs_compiler
@pytest.mark.parametrize("mode", [0o770, 0o707])
def test_a_kernel_folder_others_can_write_to_is_refused(cache, caplog, monkeypatch, mode):
    (cache / "kernels").chmod(mode)
    with pytest.raises(kernel.KernelUnavailable, match=r"can be written by other users.*chmod go-w"):
        metrics.locality(ATTENTION)
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "auto")
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        values = [metrics.symmetry(ATTENTION) for _ in range(2)]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "not private" in warnings[0]
    torch.testing.assert_close(values[0], pytorch_values(monkeypatch), rtol=0, atol=0)


@needs_compiler
@pytest.mark.parametrize("tamper", ["group_writable", "symlink", "record_world_writable"])
def test_a_library_or_record_others_could_have_changed_is_rebuilt(cache, caplog, tmp_path, tamper):
    _, library = recorded(cache)
    if tamper == "group_writable":
        library.chmod(0o770)
    elif tamper == "symlink":
        elsewhere = tmp_path / "elsewhere.so"
        shutil.copy(library, elsewhere)
        library.unlink()
        library.symlink_to(elsewhere)
    else:
        next((cache / "kernels").glob("*.sha256")).chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        metrics.locality(ATTENTION)
    assert_rebuilt(cache, caplog, "unusable")
    assert stat.S_IMODE(next((cache / "kernels").glob("*.sha256")).stat().st_mode) == 0o600


@needs_compiler
@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="only root can give a file to another user")
def test_a_library_owned_by_another_user_is_rebuilt_and_such_a_folder_refused(cache, caplog):
    _, library = recorded(cache)
    os.chown(library, 65534, 65534)
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        metrics.locality(ATTENTION)
    assert_rebuilt(cache, caplog, "belongs to another user")
    assert library.stat().st_uid == os.getuid()
    kernel.forget_loaded()
    os.chown(cache / "kernels", 65534, 65534)
    with pytest.raises(kernel.KernelUnavailable, match="belongs to another user"):
        metrics.locality(ATTENTION)


@needs_compiler
def test_under_umask_000_the_cache_is_created_private(tmp_path, monkeypatch):
    cache = tmp_path / "new" / "cache"
    monkeypatch.setenv("HF_POSENC_CACHE", str(cache))
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
    kernel.forget_loaded()
    previous = os.umask(0)
    try:
        metrics.locality(ATTENTION)
    finally:
        os.umask(previous)
        kernel.forget_loaded()
    for folder in (tmp_path / "new", cache, cache / "kernels"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for item in (cache / "kernels").iterdir():
        assert stat.S_IMODE(item.stat().st_mode) & 0o077 == 0, item


def compile_library(tmp_path, name: str, code: str) -> os.PathLike:
    source = tmp_path / f"{name}.c"
    source.write_text(code)
    compiler = next(name for name in ("cc", "gcc", "clang") if shutil.which(name))
    library = tmp_path / f"{name}.so"
    subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    return library


def constructor_library(tmp_path, marker) -> os.PathLike:
    """A library that leaves `marker` when the loader runs it."""
    return compile_library(
        tmp_path,
        "planted",
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void run_on_load(void) {\n"
        f'    FILE *file = fopen("{marker}", "w"); if (file) {{ fputs("ran", file); fclose(file); }}\n'
        "}\n"
        "long posenc_attention_stats(void) { return -1; }\n",
    )


# Loads and answers like the kernel, but its totals are wrong: only the check after loading can tell.
WRONG_KERNEL = """
#include <stdint.h>
int64_t posenc_attention_stats(const void *matrices, int is_float32, int64_t count, int64_t size,
                               const int64_t *lengths, int flags, int64_t max_distance, double row_tolerance,
                               double symmetry_tolerance, double constant_range, double *results, int threads) {
    for (int64_t index = 0; index < count; index++) results[index] = 0.0;  /* within the first row of results */
    return -1;
}
"""


@needs_compiler
def test_a_library_switched_in_after_its_check_is_never_loaded(cache, caplog, monkeypatch, tmp_path):
    """The attacker's move at the worst moment: right after the library's bytes were checked, its name is given to
    another library. Hashing the path and then loading the path would load that one."""
    marker = tmp_path / "constructor_ran"
    planted = constructor_library(tmp_path, marker)
    _, library = recorded(cache)
    checked = []

    def read_then_switch(path, **options):
        content = kernel.read_private_bytes.__wrapped__(path, **options)
        if str(path) == str(library):
            shutil.copy(planted, library)
            checked.append(path)
        return content

    read_then_switch.__wrapped__ = kernel.read_private_bytes
    monkeypatch.setattr(kernel, "read_private_bytes", read_then_switch)
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        values = metrics.symmetry(ATTENTION)
    assert checked and not marker.exists(), "the library switched in after the check was loaded"
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    torch.testing.assert_close(values, pytorch_values(monkeypatch), rtol=0, atol=1e-12)
    assert not list((cache / "kernels").glob(".load-*"))  # the private copy is gone once loaded


@needs_compiler
def test_a_recorded_library_that_computes_wrong_results_is_rebuilt(cache, caplog, monkeypatch, tmp_path):
    digest, library = recorded(cache)
    wrong = compile_library(tmp_path, "wrong", WRONG_KERNEL).read_bytes()
    library.write_bytes(wrong)  # ... with a record that matches it: hashes cannot tell, only its outputs can
    (record,) = (cache / "kernels").glob("*.sha256")
    record.write_text(f"{hashlib.sha256(wrong).hexdigest()}  {library.name}\n")
    with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
        values = metrics.symmetry(ATTENTION)
    assert_rebuilt(cache, caplog, "computes wrong results")
    assert recorded(cache)[0] == digest
    torch.testing.assert_close(values, pytorch_values(monkeypatch), rtol=0, atol=1e-12)


@needs_compiler
def test_a_kernel_that_always_computes_wrong_results_falls_back_to_pytorch(monkeypatch, tmp_path, caplog):
    wrong_source = tmp_path / "wrong.c"
    wrong_source.write_text(WRONG_KERNEL)
    real_compiler = next(shutil.which(name) for name in ("cc", "gcc", "clang") if shutil.which(name))
    compiler = tmp_path / "wrong-cc"  # compiles WRONG_KERNEL whatever it is asked to compile
    compiler.write_text(
        '#!/bin/sh\nwhile [ "$#" -gt 0 ]; do if [ "$1" = "-o" ]; then out="$2"; fi; shift; done\n'
        f'exec "{real_compiler}" -shared -fPIC "{wrong_source}" -o "$out"\n'
    )
    compiler.chmod(0o755)
    monkeypatch.setenv("CC", str(compiler))
    monkeypatch.setenv("HF_POSENC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "auto")
    monkeypatch.setattr(kernel, "_warned", set())
    kernel.forget_loaded()
    try:
        with caplog.at_level(logging.WARNING, logger="hf_posenc.analysis.kernel"):
            values = [metrics.symmetry(ATTENTION) for _ in range(2)]
        warnings = [record.getMessage() for record in caplog.records]
        assert len(warnings) == 1 and "pure-PyTorch path" in warnings[0] and "computes wrong results" in warnings[0]
        torch.testing.assert_close(values[0], pytorch_values(monkeypatch), rtol=0, atol=0)
        monkeypatch.setenv("HF_POSENC_METRICS_KERNEL", "require")
        with pytest.raises(kernel.KernelUnavailable, match="differ from PyTorch's"):
            metrics.symmetry(ATTENTION)
    finally:
        kernel.forget_loaded()


@needs_compiler
def test_a_world_writable_cache_root_refuses_the_kernel(cache, monkeypatch):
    cache.chmod(0o777)  # the kernels folder below it is still 0700: others could rename it and put theirs
    with pytest.raises(kernel.KernelUnavailable, match=r"not private: .*can be written by other users.*chmod go-w"):
        metrics.locality(ATTENTION)


# --------------------------------------------------------------------------------------------------------
# The data cache: every folder from the cache root down, whenever a cached file is used
# --------------------------------------------------------------------------------------------------------
PLANTED_SNLI = json.dumps(
    {"gold_label": "entailment", "sentence1": "planted", "sentence2": "planted", "sentence2_parse": "(ROOT planted)"}
)


@pytest.fixture
def data_cache(tmp_path, monkeypatch):
    """A cache holding an SNLI test file and the stdlib corpus (planted by hand: no network), in private folders."""
    from hf_posenc import data

    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_POSENC_CACHE", str(cache))
    for file, text in (
        (cache / "snli" / "snli_1.0_test.jsonl", PLANTED_SNLI),
        (data.CORPORA["stdlib"].cache_file(), "x"),
    ):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text + "\n")
    for folder in (cache, cache / "snli", cache / "corpora"):
        folder.chmod(0o700)
    return cache


def use_cached_files():
    from hf_posenc import data

    data.load_snli("test")
    data.builtin_corpus("stdlib")


def test_private_cached_files_are_used(data_cache):
    from hf_posenc import data

    assert data.load_snli("test")[0]["sentence1"] == "planted"
    assert data.builtin_corpus("stdlib") == data.CORPORA["stdlib"].cache_file()


@pytest.mark.parametrize("where", ["", "snli", "corpora"])
@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_cache_folder_others_can_write_to_is_refused_whenever_a_cached_file_is_read(data_cache, where, mode):
    from hf_posenc import data

    folder = data_cache / where if where else data_cache
    folder.chmod(mode)
    reads = [lambda: data.load_snli("test"), lambda: data.builtin_corpus("stdlib")]
    if where == "snli":
        reads = reads[:1]
    elif where == "corpora":
        reads = reads[1:]
    for read in reads:
        with pytest.raises(PermissionError) as caught:
            read()
        message = str(caught.value)
        assert f"{folder} can be written by other users" in message
        assert f"chmod go-w {folder}" in message and "HF_POSENC_CACHE" in message


def test_a_planted_file_others_can_write_to_is_refused(data_cache):
    from hf_posenc import data

    (data_cache / "snli").chmod(0o755)
    planted = data_cache / "snli" / "snli_1.0_test.jsonl"
    planted.chmod(0o666)
    with pytest.raises(PermissionError, match=r"snli_1.0_test.jsonl can be written by other users.*chmod go-w"):
        data.load_snli("test")
    (data_cache / "snli").chmod(0o700)  # a umask-002 file in a folder no one else can enter: no one can reach it
    planted.chmod(0o664)
    assert data.load_snli("test")[0]["sentence1"] == "planted"


def test_a_linked_cache_folder_is_refused(data_cache, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (data_cache / "snli").rename(elsewhere)
    (data_cache / "snli").symlink_to(elsewhere)
    with pytest.raises(PermissionError, match="is a symbolic link"):
        use_cached_files()


def test_a_cache_root_of_another_user_is_refused(data_cache):
    """Without root no file can be given to another user: the ownership check is run as if this user were another."""
    from hf_posenc.storage import check_cache_path

    target = data_cache / "snli" / "snli_1.0_test.jsonl"
    assert check_cache_path(target) == target
    with pytest.raises(PermissionError, match=rf"{data_cache} belongs to another user.*HF_POSENC_CACHE"):
        check_cache_path(target, owner_uid=os.getuid() + 1)


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="only root can give a file to another user")
def test_a_cache_root_really_owned_by_another_user_is_refused(data_cache):
    os.chown(data_cache, 65534, 65534)
    with pytest.raises(PermissionError, match="belongs to another user"):
        use_cached_files()


def test_a_prepared_dataset_under_a_world_writable_root_is_refused(data_cache, tmp_path, tiny_tokenizer):
    from hf_posenc.data import prepare_mlm_data

    text = tmp_path / "train.txt"
    text.write_text("\n\n".join(f"sentence number {index} of the training text." for index in range(40)) + "\n")
    arguments = dict(train_files=[text], tokenizer=tiny_tokenizer, max_seq_length=16, num_proc=1)
    assert prepare_mlm_data(**arguments).built  # into $HF_POSENC_CACHE/prepared, private
    data_cache.chmod(0o777)
    with pytest.raises(PermissionError, match=rf"{data_cache} can be written by other users"):
        prepare_mlm_data(**arguments)
    data_cache.chmod(0o700)
    (prepared,) = [path for path in (data_cache / "prepared").iterdir() if path.is_dir()]
    prepared.chmod(0o777)
    with pytest.raises(PermissionError, match=rf"{prepared} can be written by other users"):
        prepare_mlm_data(**arguments)


# --------------------------------------------------------------------------------------------------------
# hf-posenc analyze and code in model folders
# --------------------------------------------------------------------------------------------------------


def marker_code(marker) -> str:
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"


def test_a_saved_variant_loads_from_the_installed_package_without_running_the_folders_code(
    tmp_path, tiny_tokenizer, capsys
):
    folder = tmp_path / "model"
    AutoModelForMaskedLM.from_config(tiny_config("alibi", vocab_size=len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["auto_map"]  # the folder does point at its code
    marker = tmp_path / "folder_code_ran"
    for code in folder.glob("*.py"):
        code.write_text(marker_code(marker) + code.read_text())
    status = cli.main(["analyze", str(folder), "--output", str(tmp_path / "out"), "--no_plots", "--max_length", "32"])
    assert status == 0, capsys.readouterr().err
    assert not marker.exists()


SMALL_BERT = dict(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64)


def write_custom_code_folder(folder, tokenizer, marker) -> None:
    """A BERT whose config.json asks transformers to run the folder's own custom.py, which leaves a marker."""
    BertModel(BertConfig(**SMALL_BERT)).save_pretrained(folder)
    (folder / "custom.py").write_text(
        marker_code(marker) + "from transformers import BertConfig, BertModel\n\n\n"
        "class CustomConfig(BertConfig):\n    model_type = 'posenc_test_custom'\n\n\n"
        "class CustomModel(BertModel):\n    config_class = CustomConfig\n"
    )
    config = {
        "model_type": "posenc_test_custom",
        "auto_map": {"AutoConfig": "custom.CustomConfig", "AutoModel": "custom.CustomModel"},
        **SMALL_BERT,
        "vocab_size": len(tokenizer),
    }
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer.save_pretrained(folder)


def test_code_in_a_model_folder_runs_only_with_trust_remote_code(tmp_path, tiny_tokenizer, capsys):
    folder, marker = tmp_path / "custom", tmp_path / "custom_code_ran"
    write_custom_code_folder(folder, tiny_tokenizer, marker)
    arguments = ["analyze", str(folder), "--output", str(tmp_path / "out"), "--no_plots", "--max_length", "16"]
    assert cli.main(arguments) == 2
    error = capsys.readouterr().err
    assert "asks to run its own code (custom.py" in error and "--trust_remote_code" in error
    assert not marker.exists() and not (tmp_path / "out").exists()
    status = cli.main([*arguments, "--trust_remote_code"])  # the user read custom.py and trusts it
    assert status == 0, capsys.readouterr().err
    assert marker.exists()

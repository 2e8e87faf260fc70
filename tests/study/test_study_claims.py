"""Claims in a shared study folder: exclusive while held, a dead process's or a silent job's lock taken over, and two
invocations at once on a micro study doing each unit exactly once."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest
from study_helpers import micro_spec, write_spec

from hf_posenc.study.claims import LOCK_NAME, ClaimHeld, claim


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_held_claim_is_exclusive_until_released(tmp_path):
    first = claim(tmp_path / "unit")
    with pytest.raises(ClaimHeld, match=f"pid {os.getpid()}"):
        claim(tmp_path / "unit")
    first.release()
    claim(tmp_path / "unit").release()
    assert not (tmp_path / "unit" / LOCK_NAME).exists()


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path):
    folder = tmp_path / "unit"
    folder.mkdir()
    stale = {"host": socket.gethostname(), "pid": dead_pid(), "started": "2026-01-01T00:00:00"}
    (folder / LOCK_NAME).write_text(json.dumps(stale))
    messages = []
    held = claim(folder, log=messages.append)
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert "took over a stale claim" in messages[0] and str(stale["pid"]) in messages[0]
    held.release()


def test_a_silent_lock_of_another_host_is_taken_over_only_after_the_heartbeat_timeout(tmp_path):
    folder = tmp_path / "unit"
    folder.mkdir()
    lock = folder / LOCK_NAME
    lock.write_text(json.dumps({"host": "node-17", "pid": 1, "started": "2026-01-01T00:00:00"}))
    with pytest.raises(ClaimHeld, match="node-17"):
        claim(folder, heartbeat_timeout=60)
    old = time.time() - 120
    os.utime(lock, (old, old))
    claim(folder, heartbeat_timeout=60, log=lambda line: None).release()


def test_the_heartbeat_keeps_a_live_claim_fresh(tmp_path):
    held = claim(tmp_path / "unit", heartbeat_every=0.05)
    lock = tmp_path / "unit" / LOCK_NAME
    old = time.time() - 1000
    os.utime(lock, (old, old))
    time.sleep(0.3)
    assert time.time() - lock.stat().st_mtime < 10
    held.release()


def test_two_invocations_at_once_do_each_unit_exactly_once(tmp_path):
    spec = micro_spec(runs=[{"variant": "rope"}, {"variant": "alibi"}, {"variant": "nope"}])
    spec["pretraining"]["steps"] = 2
    spec_path = write_spec(tmp_path / "spec.yaml", spec)
    output = tmp_path / "study"
    command = [sys.executable, "-m", "hf_posenc.cli", "study", spec_path, "--output", str(output)]
    environment = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    started = Counter(
        match.group(1) for text in outputs for match in re.finditer(r"^(\S+ seed 1): pretrain$", text, re.MULTILINE)
    )
    assert started == Counter({f"{name} seed 1": 1 for name in ("rope", "alibi", "nope")}), outputs
    assert sum(text.count("training the shared WordPiece tokenizer") for text in outputs) == 1
    for name in ("rope", "alibi", "nope"):
        assert (output / "runs" / name / "seed-1" / "pretrain" / "posenc_results.json").is_file()
        assert not (output / "runs" / name / "seed-1" / LOCK_NAME).exists()

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
from pathlib import Path

import pytest
from study_helpers import micro_spec, write_spec

from hf_posenc.cli import main
from hf_posenc.study import claims as claims_module
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


# claims.py needs only the standard library: the processes below load it alone, without importing hf_posenc (and
# torch), which takes many seconds on a loaded machine.
LOAD_CLAIMS = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("claims", {str(Path(claims_module.__file__))!r})
claims = sys.modules["claims"] = importlib.util.module_from_spec(spec)  # dataclasses look their module up there
spec.loader.exec_module(claims)
"""
# A process that claims the folder given as its argument, says so, and holds the claim until its stdin closes.
HOLDER = (
    LOAD_CLAIMS
    + """
held = claims.claim(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
held.release()
"""
)
# A process that tries to claim the folder with a heartbeat timeout of 60 s (two heartbeats) and says what happened.
CONTENDER = (
    LOAD_CLAIMS
    + """
try:
    claims.claim(sys.argv[1], heartbeat_timeout=60, log=lambda line: print(line, flush=True)).release()
    print("claimed")
except claims.ClaimHeld as error:
    print("held by", error.holder)
"""
)


def test_a_live_process_on_this_host_keeps_its_claim_however_old_its_heartbeat(tmp_path):
    folder = tmp_path / "unit"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = folder / LOCK_NAME
        silent_for_an_hour = time.time() - 3600  # as if the heartbeat thread had been starved on a busy machine
        os.utime(lock, (silent_for_an_hour, silent_for_an_hour))
        contender = subprocess.run([sys.executable, "-c", CONTENDER, str(folder)], capture_output=True, text=True)
        assert (
            contender.stdout.strip()
            == f"held by host {socket.gethostname()} pid {holder.pid} since " + json.loads(lock.read_text())["started"]
        ), contender.stderr
        assert json.loads(lock.read_text())["pid"] == holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not (folder / LOCK_NAME).exists()  # released by its holder, not taken over
    contender = subprocess.run([sys.executable, "-c", CONTENDER, str(folder)], capture_output=True, text=True)
    assert contender.stdout.strip() == "claimed", contender.stderr


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/stat"), reason="process start times are read from /proc")
def test_a_lock_whose_pid_now_belongs_to_a_later_process_is_taken_over(tmp_path):
    folder = tmp_path / "unit"
    held = claim(folder)
    lock = folder / LOCK_NAME
    holder = json.loads(lock.read_text())
    held.release()
    # This process's pid, alive, but recorded with an earlier start: the process that wrote the lock is gone.
    (folder / LOCK_NAME).write_text(json.dumps({**holder, "process_start": holder["process_start"] - 1}))
    messages = []
    claim(folder, log=messages.append).release()
    assert "took over a stale claim" in messages[0]
    (folder / LOCK_NAME).write_text(json.dumps(holder))  # the same process: its claim, never stale
    with pytest.raises(ClaimHeld):
        claim(folder, heartbeat_timeout=60)


def test_a_heartbeat_timeout_below_two_heartbeats_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"--heartbeat_timeout 10 is below 2 heartbeats of a live claim \(2 x 30 s\)"):
        claim(tmp_path / "unit", heartbeat_timeout=10)
    assert not (tmp_path / "unit").exists()
    claim(tmp_path / "unit", heartbeat_timeout=0.2, heartbeat_every=0.1).release()
    spec = write_spec(tmp_path / "spec.yaml", micro_spec())
    output = tmp_path / "study"
    assert main(["study", spec, "--output", str(output), "--heartbeat_timeout", "10"]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("hf-posenc study: error: --heartbeat_timeout 10 is below 2 heartbeats")
    assert "give at least 60 seconds" in message
    assert not list(output.glob("runs/*/seed-1/pretrain"))  # nothing trained


def test_a_spec_path_that_is_a_folder_is_named(tmp_path, capsys):
    assert main(["study", str(tmp_path)]) == 2
    message = capsys.readouterr().err.strip()
    assert (
        message
        == f"hf-posenc study: error: study spec {tmp_path} is a folder; give the path of a YAML or JSON spec file."
    )

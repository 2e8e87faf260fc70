"""Cooperative claiming of work in a shared output folder, so that several invocations (GPUs, machines, the tasks of
a cluster job array) can work through one study without doing anything twice.

A claim is a lock file created with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFSv3+), holding the
claimer's host, pid and start time, and (on Linux) what tells its process apart from a later one with the same pid:
the process's start time in clock ticks since boot, the boot id and the pid namespace. While the work runs, a
heartbeat thread touches the file.

A lock written on this host (same host name, boot and pid namespace) is judged by its process alone: it is stale,
and taken over, when that process is dead or its pid now belongs to a process started later; while the process
lives, the lock is never stale, however old its heartbeat (a busy machine may delay the heartbeat thread). A lock of
another host is stale when its heartbeat is older than ``heartbeat_timeout`` seconds (a job killed on another
machine); the timeout must be at least `MIN_TIMEOUT_HEARTBEATS` heartbeat intervals, or a live claimer's lock would
look stale between two heartbeats. Take-over is serialised by a second lock (a directory made with mkdir), so two
invocations never both take over the same stale lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Claim",
    "ClaimHeld",
    "DEFAULT_HEARTBEAT_TIMEOUT",
    "check_heartbeat_timeout",
    "claim",
    "describe_lock",
    "lock_is_stale",
]

LOCK_NAME = ".claim.lock"
# A live claimer touches its lock this often; a lock untouched for DEFAULT_HEARTBEAT_TIMEOUT is a killed job's.
HEARTBEAT_SECONDS = 30.0
DEFAULT_HEARTBEAT_TIMEOUT = 600.0
# A take-over that crashed half-way leaves its directory; after this long it is removed.
TAKEOVER_TIMEOUT = 60.0
# A heartbeat timeout shorter than this many heartbeat intervals would let one late heartbeat lose a live claim.
MIN_TIMEOUT_HEARTBEATS = 2


class ClaimHeld(Exception):
    """The work is claimed by a live invocation; `holder` says whose."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (Linux's /proc/<pid>/stat field 22); None elsewhere or
    when the process is gone. A pid reused by a later process has a later start."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        # The command name (field 2) is in parentheses and may hold spaces or parentheses: split after the last ')'.
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _read_or_none(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _pid_space() -> dict:
    """What makes a pid name the same process for two readers: the boot and the pid namespace (Linux; empty
    elsewhere). Two containers on one host may share a host name but not their pids."""
    space = {"boot_id": _read_or_none("/proc/sys/kernel/random/boot_id")}
    with contextlib.suppress(OSError):
        space["pid_namespace"] = os.readlink("/proc/self/ns/pid")
    return {key: value for key, value in space.items() if value is not None}


def _in_this_pid_space(holder: dict) -> bool:
    """The lock was written on this host, in this boot and pid namespace, so its pid can be looked up here. A lock
    written before these were recorded counts by its host name, as it always did."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    return all(holder.get(key, value) == value for key, value in _pid_space().items())


def _holder_is_alive(holder: dict) -> bool:
    """The lock's own process still runs: its pid is alive and, where start times are known, was not reused."""
    if not _pid_alive(holder["pid"]):
        return False
    recorded, current = holder.get("process_start"), _process_start(holder["pid"])
    return recorded is None or current is None or recorded == current


def check_heartbeat_timeout(heartbeat_timeout: float, heartbeat_every: float = HEARTBEAT_SECONDS) -> None:
    """Refuse a timeout under which a live claimer on another host would lose its claim between two heartbeats."""
    if not heartbeat_timeout >= MIN_TIMEOUT_HEARTBEATS * heartbeat_every:
        raise ValueError(
            f"--heartbeat_timeout {heartbeat_timeout:g} is below {MIN_TIMEOUT_HEARTBEATS} heartbeats of a live claim "
            f"({MIN_TIMEOUT_HEARTBEATS} x {heartbeat_every:g} s): a live invocation's claim would look stale and be "
            f"taken over; give at least {MIN_TIMEOUT_HEARTBEATS * heartbeat_every:g} seconds "
            f"(default {DEFAULT_HEARTBEAT_TIMEOUT:g})."
        )


def _read_lock(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {}  # being written, or damaged: judged by its age alone


def describe_lock(path: Path) -> str:
    holder = _read_lock(path) or {}
    return f"host {holder.get('host', '?')} pid {holder.get('pid', '?')} since {holder.get('started', '?')}"


def lock_is_stale(path: Path, heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT) -> bool:
    """True when the lock's process on this host is gone (dead, or its pid reused), or, for a lock of another host,
    when its heartbeat is older than `heartbeat_timeout` s. A live process on this host never loses its lock."""
    holder = _read_lock(path)
    if holder is None:
        return False  # gone: not stale, free
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if holder and _in_this_pid_space(holder):
        return not _holder_is_alive(holder)
    if not holder and age < TAKEOVER_TIMEOUT:
        return False  # a lock being written right now
    return age > heartbeat_timeout


@dataclass
class Claim:
    path: Path
    _stop: threading.Event
    _thread: threading.Thread | None = None

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _heartbeat(path: Path, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        with contextlib.suppress(OSError):
            os.utime(path)


def _create(path: Path) -> bool:
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "process_start": _process_start(os.getpid()),
        **_pid_space(),
    }
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(holder, handle)
    return True


def _take_over(path: Path, heartbeat_timeout: float) -> bool:
    """Remove `path` if it is still stale, under the take-over lock; True when this call removed it."""
    takeover = path.with_name(path.name + ".takeover")
    try:
        takeover.mkdir()
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):
            if time.time() - takeover.stat().st_mtime > TAKEOVER_TIMEOUT:
                with contextlib.suppress(OSError):
                    takeover.rmdir()
        return False
    try:
        if lock_is_stale(path, heartbeat_timeout):  # judged again: another may have taken it over meanwhile
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return True
        return False
    finally:
        with contextlib.suppress(OSError):
            takeover.rmdir()


def claim(
    folder: str | Path,
    *,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    heartbeat_every: float = HEARTBEAT_SECONDS,
    log=print,
) -> Claim:
    """Claim `folder` (created if missing) for this process, or raise `ClaimHeld` when a live invocation holds it.
    A stale lock is taken over (and logged). Release the claim with `Claim.release()`. A ValueError refuses a
    `heartbeat_timeout` below `MIN_TIMEOUT_HEARTBEATS` times `heartbeat_every`."""
    check_heartbeat_timeout(heartbeat_timeout, heartbeat_every)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    for _ in range(3):
        if _create(path):
            stop = threading.Event()
            thread = threading.Thread(target=_heartbeat, args=(path, stop, heartbeat_every), daemon=True)
            thread.start()
            return Claim(path, stop, thread)
        if lock_is_stale(path, heartbeat_timeout):
            stale = describe_lock(path)
            if _take_over(path, heartbeat_timeout):
                log(f"{folder}: took over a stale claim ({stale})")
            continue
        raise ClaimHeld(describe_lock(path))
    raise ClaimHeld(describe_lock(path))

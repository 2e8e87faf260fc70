"""Cooperative claiming of work in a shared output folder, so that several invocations (GPUs, machines, the tasks of
a cluster job array) can work through one study without doing anything twice.

A claim is a lock file created with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFSv3+), holding the
claimer's host, pid and start time. While the work runs, a heartbeat thread touches the file. A lock is stale, and
taken over, when its process is dead on this host, or when its heartbeat is older than ``heartbeat_timeout``
seconds (a job killed on another machine). Take-over is serialised by a second lock (a directory made with mkdir), so
two invocations never both take over the same stale lock.
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

__all__ = ["Claim", "ClaimHeld", "DEFAULT_HEARTBEAT_TIMEOUT", "claim", "describe_lock", "lock_is_stale"]

LOCK_NAME = ".claim.lock"
# A live claimer touches its lock this often; a lock untouched for DEFAULT_HEARTBEAT_TIMEOUT is a killed job's.
HEARTBEAT_SECONDS = 30.0
DEFAULT_HEARTBEAT_TIMEOUT = 600.0
# A take-over that crashed half-way leaves its directory; after this long it is removed.
TAKEOVER_TIMEOUT = 60.0


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
    """True when the lock's process is dead on this host or its heartbeat is older than `heartbeat_timeout` s."""
    holder = _read_lock(path)
    if holder is None:
        return False  # gone: not stale, free
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        if not _pid_alive(holder["pid"]):
            return True
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
    A stale lock is taken over (and logged). Release the claim with `Claim.release()`."""
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

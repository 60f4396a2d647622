"""One writer at a time per project: the run lock every stage writer takes.

Cron, a manual `oanet nightly`, `prefect deployment run` and `dvc repro` may start while
another run is still busy; two intakes at once lose label rows. Every command that
writes a stage's outputs therefore holds an exclusive `flock` on `.cache/oanet.lock` in
the project folder: the folder of its params file (`project_root`; params.yaml sits in
the project root, which is also the working directory every path in it starts from).

- The lock file holds a note of its holder (pid, host, command, start time), so a refused
  run can say who is busy: "another run holds the project lock: pid 1234 'oanet nightly'
  since 2026-03-01 02:00:03 on host aoi-3".
- A holder that dies, even by SIGKILL or a power cut, loses its lock with its process: the
  kernel releases a flock when the last descriptor closes. There is no stale lock to clean.
- Re-entrant within a process: the nightly flow holds it and runs the same stage code the
  CLI commands run, which take it again without waiting on themselves.
- The file is never deleted: deleting it would let a second run lock a new file while the
  first still holds the old one. If someone deletes it anyway, `acquire` notices (the path
  no longer names the locked file) and locks the new one.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from oanet.errors import OanetError

LOCK_FILE = ".cache/oanet.lock"
POLL_S = 0.5

_held: dict[Path, list[int]] = {}     # lock path -> [descriptor, depth] of the locks this process holds
_guard = threading.RLock()


class LockBusy(OanetError, RuntimeError):
    """Another run holds the project lock."""


def project_root(params_path: str | Path) -> Path:
    """The project a params file belongs to: its folder (params.yaml sits in the project root;
    a test's or a benchmark's own params file makes its own project)."""
    return Path(params_path).resolve().parent


def project_lock(command: str, params_path: str | Path):
    """`run_lock` for the project of `params_path`, waiting up to its `nightly.lock_wait_s`."""
    from oanet.config import load_params

    return run_lock(command, wait_s=load_params(params_path).nightly.lock_wait_s, root=project_root(params_path))


def lock_path(root: str | Path | None = None) -> Path:
    return (Path(root or Path.cwd()) / LOCK_FILE).resolve()


def holder(path: Path) -> dict:
    """The note the current holder wrote (empty when unreadable: it may be writing it right now)."""
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def describe(note: dict) -> str:
    if not note:
        return "holder unknown"
    return f"pid {note.get('pid')} '{note.get('command')}' since {note.get('since')} on host {note.get('host')}"


def _try_lock(path: Path) -> int | None:
    """A descriptor holding the flock on the file `path` names now, or None when another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)       # Python opens it close-on-exec: no child inherits it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:                   # deleted or replaced after we opened it: lock what the path names now
        os.close(fd)
        return _try_lock(path)
    return fd


def _write_note(fd: int, command: str) -> None:
    note = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "since": datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[:8]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(note) + "\n").encode(), 0)


def acquire(command: str, *, wait_s: float = 0.0, root: str | Path | None = None) -> Path:
    """Take the project lock (again, if this process holds it); wait up to `wait_s`, then raise LockBusy."""
    path = lock_path(root)
    with _guard:
        if path in _held:
            _held[path][1] += 1
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + max(wait_s, 0.0)
        while (fd := _try_lock(path)) is None:
            if time.monotonic() >= deadline:
                waited = f" (waited {wait_s:g} s)" if wait_s > 0 else ""
                raise LockBusy(f"another run holds the project lock: {describe(holder(path))}{waited}. "
                               f"It is released when that run ends, also if it is killed ({path}); "
                               "nightly.lock_wait_s sets how long to wait for it")
            time.sleep(min(POLL_S, max(deadline - time.monotonic(), 0.01)))
        _write_note(fd, command)
        _held[path] = [fd, 1]
        return path


def release(path: Path) -> None:
    with _guard:
        fd, depth = _held[path]
        if depth > 1:
            _held[path][1] -= 1
            return
        del _held[path]
        os.ftruncate(fd, 0)       # no note of a holder that has gone
        os.close(fd)              # releases the flock


@contextmanager
def run_lock(command: str, *, wait_s: float = 0.0, root: str | Path | None = None):
    """`with run_lock("oanet nightly"):` the block runs as the project's only writer."""
    path = acquire(command, wait_s=wait_s, root=root)
    try:
        yield path
    finally:
        release(path)

"""One array built part by part by every process that needs it at the same time.

Two trials that start together (`hydra.sweeper.n_jobs=2`, finalize's workers) both need the teacher's
logits for the augmented views, minutes of work each: computed by both, they cost both cores that long.
Here each process claims a part that nobody holds (an exclusive claim file beside the result), computes
it and saves it; when no part is left to claim it waits for those the others hold, joins the parts into
the one file (written atomically) and clears them. A stop loses only the parts being computed; a claim
whose process is gone (on this host), or older than STALE_S, is taken over.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from compress.core.atomic import write_whole

STALE_S = 1800.0  # a claim this old is taken to be lost (no part takes that long)


class _Joined(Exception):
    """Another process has joined the parts into the result (and cleared them) meanwhile."""


def _owner() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def _lost(claim: Path) -> str | None:
    """The text of `claim` where its process cannot be computing its part any more, else None."""
    try:
        age = time.time() - claim.stat().st_mtime
        text = claim.read_text()
    except FileNotFoundError:
        return None  # released meanwhile: the next try creates it
    try:
        host, pid = text.split()
    except ValueError:  # being written this instant, or its writer died before writing
        return text if age >= 60 else None
    if age >= STALE_S or text == _owner():  # this process's own is an earlier life's (a reused pid)
        return text
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return text
    except PermissionError:
        pass
    return None


def _claim(claim: Path) -> bool:
    """Take the part `claim` stands for, unless a live process holds it."""
    for _ in range(3):  # again after taking a lost claim away
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            seen = _lost(claim)
            if seen is None:
                if claim.exists():
                    return False
                continue
            # take it away by a rename, which one process alone wins; a claim made meanwhile goes back
            moved = claim.with_name(f"{claim.name}.{uuid.uuid4().hex}.lost")
            try:
                os.rename(claim, moved)
            except FileNotFoundError:
                continue
            if moved.read_text() != seen:
                try:
                    os.link(moved, claim)
                except FileExistsError:
                    pass
            moved.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(_owner())
        return True
    return False


def _release(claim: Path) -> None:
    """Remove `claim` where it is still this process's (one taken over meanwhile is left to its taker)."""
    try:
        if claim.read_text() == _owner():
            claim.unlink()
    except FileNotFoundError:
        pass


def _save(array: np.ndarray, target: Path) -> None:
    """`array` at `target` atomically, through a file whose name no other process or host shares."""
    write_whole(target, lambda tmp: np.save(tmp, array), suffix=".npy")


def _take_parts(path: Path, parts: Path, pending: list[int], n_parts: int, compute, computed) -> set[int]:
    """Compute each pending part that nobody holds; returns the pending parts now finished by anyone."""
    finished = set()
    for k in pending:
        part, claim = parts / f"{k}.npy", parts / f"{k}.claim"
        if path.is_file():
            raise _Joined
        if not part.is_file() and _claim(claim):
            try:
                if path.is_file():
                    raise _Joined
                if not part.is_file():  # another process may have finished it just before the claim
                    _save(compute(k), part)
                    if computed is not None:
                        computed(k, sum((parts / f"{j}.npy").is_file() for j in range(n_parts)))
            finally:
                _release(claim)
        if part.is_file():
            finished.add(k)
    return finished


def progress(log, what: str, unit: str, n_parts: int):
    """The `computed` and `waiting` callbacks of `build` that say, in `log`, how far `what` has come."""
    start, mine = time.perf_counter(), []

    def computed(k: int, done: int) -> None:
        mine.append(k)
        spent = time.perf_counter() - start
        log.info("%s: %s %d done here, %d of %d in all (%.0fs, at most about %.0fs left)", what, unit, k + 1, done,
                 n_parts, spent, spent / len(mine) * (n_parts - done))

    def waiting(left: int) -> None:
        log.info("%s: waiting for %d %s(s) another process is computing", what, left, unit)

    return computed, waiting


def build(path: Path, n_parts: int, compute: Callable[[int], np.ndarray],
          computed: Callable[[int, int], None] | None = None, waiting: Callable[[int], None] | None = None,
          poll_s: float = 2.0, join: Callable[[list], np.ndarray] = np.stack) -> np.ndarray:
    """The array joined (`join`: stacked, or np.concatenate for pieces along the first axis) from
    `compute(0) ... compute(n_parts - 1)`, saved at `path`: read where it is there, else built with
    whichever other processes build it now. `computed(k, done)` is called after this process computed
    part k (`done`: the parts finished by anyone); `waiting(left)` once, when only parts held by others
    are left."""
    if path.is_file():
        return np.load(path)
    parts = path.parent / f"{path.name}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    pending, told = set(range(n_parts)), False
    try:
        while pending:
            moved = _take_parts(path, parts, sorted(pending), n_parts, compute, computed)
            pending -= moved
            if pending and not moved:
                if waiting is not None and not told:
                    waiting(len(pending))
                    told = True
                time.sleep(poll_s)
                if path.is_file():
                    raise _Joined
        joined = join([np.load(parts / f"{k}.npy") for k in range(n_parts)])
    except (_Joined, FileNotFoundError):
        if not path.is_file():
            raise
        try:
            parts.rmdir()  # where this process made the folder again after it was cleared; else not empty
        except OSError:
            pass
        return np.load(path)
    _save(joined, path)
    gone = parts.with_name(f"{parts.name}.{uuid.uuid4().hex}.gone")  # out of the others' way at once
    try:
        parts.rename(gone)
    except FileNotFoundError:
        return joined
    shutil.rmtree(gone, ignore_errors=True)
    return joined

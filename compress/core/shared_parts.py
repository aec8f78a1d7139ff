"""One array built part by part by every process that needs it at the same time.

Two trials that start together (`hydra.sweeper.n_jobs=2`, finalize's workers) both need the teacher's
logits for the augmented views, minutes of work each: computed by both, they cost both cores that long.
Here each process claims a part that nobody holds (an exclusive claim file beside the result), computes
it and saves it; when no part is left to claim it waits for those the others hold, joins the parts into
the one file (written atomically) and clears them. A stop loses only the parts being computed; a claim
whose process is gone (on this host), or older than STALE_S elsewhere, is taken over.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Callable

import numpy as np

STALE_S = 1800.0  # a claim from another host this old is taken to be lost (no part takes that long)


def _held(claim: Path) -> bool:
    """Whether the process that wrote `claim` may still be computing its part."""
    try:
        age = time.time() - claim.stat().st_mtime
        host, pid = claim.read_text().split()
    except FileNotFoundError:
        return False
    except ValueError:  # being written this instant, or its writer died before writing
        return age < 60
    if host != socket.gethostname():
        return age < STALE_S
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _claim(claim: Path) -> bool:
    """Take the part `claim` stands for, unless a live process holds it."""
    for _ in range(2):  # a second try after clearing a lost claim
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _held(claim):
                return False
            claim.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}")
        return True
    return False


def _take_parts(parts: Path, pending: list[int], n_parts: int, compute, computed) -> set[int]:
    """Compute each pending part that nobody holds; returns the pending parts now finished by anyone."""
    finished = set()
    for k in pending:
        part = parts / f"{k}.npy"
        if not part.is_file() and _claim(parts / f"{k}.claim"):
            try:
                if not part.is_file():  # another process may have finished it just before the claim
                    tmp = parts / f"{k}.{os.getpid()}.tmp.npy"
                    np.save(tmp, compute(k))
                    tmp.replace(part)
                    if computed is not None:
                        computed(k, sum((parts / f"{j}.npy").is_file() for j in range(n_parts)))
            finally:
                (parts / f"{k}.claim").unlink(missing_ok=True)
        if part.is_file():
            finished.add(k)
    return finished


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
    while pending:
        if path.is_file():
            return np.load(path)
        try:
            moved = _take_parts(parts, sorted(pending), n_parts, compute, computed)
        except FileNotFoundError:  # the parts were joined and cleared by another process meanwhile
            if path.is_file():
                return np.load(path)
            raise
        pending -= moved
        if pending and not moved:
            if waiting is not None and not told:
                waiting(len(pending))
                told = True
            time.sleep(poll_s)
    try:
        joined = join([np.load(parts / f"{k}.npy") for k in range(n_parts)])
    except FileNotFoundError:
        return np.load(path)  # joined by another process in the meantime
    tmp = path.parent / f"{path.name}.{os.getpid()}.tmp.npy"
    np.save(tmp, joined)
    tmp.replace(path)
    shutil.rmtree(parts, ignore_errors=True)
    return joined

"""Files written whole: a reader sees the old file or the new one, never part of one.

The temporary name is unique to the call, not only to the process: two trials filling the same
cache entry at once (the teacher's float32 TFLite reference, a decoded image folder) each write
their own file and the last replace wins. A shared `<name>.tmp` let the first replace move the
second writer's file into place, whose own replace then found nothing (FileNotFoundError) and
failed its trial."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
from pathlib import Path
from typing import Callable, Iterator


def write_whole(path: str | Path, write: Callable[[Path], object], suffix: str = ".tmp") -> Path:
    """`write(tmp)` to a fresh name beside `path` (ending in `suffix`, for writers that add or need
    one, as `np.savez` does `.npz`), then put it in place in one step; the temporary file is removed
    when `write` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def one_at_a_time(path: str | Path, log: logging.Logger, what: str) -> Iterator[None]:
    """Hold `path`'s lock file (`<path>.lock`) while making `path`: a second process that needs it now
    waits, saying so, and then finds it made (two trials started together on a fresh cache trained the
    same teacher twice, in one temporary folder). An advisory lock: it binds the processes of one
    machine and of file systems that pass locks on (NFS v4)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: another process is making it; waiting for it", what)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # released when the file closes

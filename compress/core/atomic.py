"""Files written whole: a reader sees the old file or the new one, never part of one.

The temporary name is unique to the call, not only to the process: two trials filling the same
cache entry at once (the teacher's float32 TFLite reference, a decoded image folder) each write
their own file and the last replace wins. A shared `<name>.tmp` let the first replace move the
second writer's file into place, whose own replace then found nothing (FileNotFoundError) and
failed its trial."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


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

"""Native log lines muted: TensorFlow's CUDA probe, the TFLite converter's, LiteRT's and coremltools' C-level
output go to the process's file descriptors, past Python's own streams. Apart from compat, so that what reads
exported files (LiteRT, coremltools) mutes them without importing TensorFlow."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_quiet():
    """Mute the C-level stdout and stderr for the duration (TensorFlow's CUDA probe, the
    TFLite converter's and LiteRT's native log lines), leaving Python's own streams alone
    once it ends."""
    fds = []
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
            fds.append(stream.fileno())
        except (AttributeError, OSError, ValueError):  # captured or closed streams
            pass
    saved = [(fd, os.dup(fd)) for fd in fds]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd, _ in saved:
            os.dup2(devnull, fd)
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)

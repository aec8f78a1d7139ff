"""Processes that need the same array at once build it together: each part once, by whoever claims it
first; a part whose claimant died is taken over; a stop keeps the finished parts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np

from compress.core import shared_parts

BUILDER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import numpy as np
    from compress.core import shared_parts

    path, marks = Path(sys.argv[1]), Path(sys.argv[2])
    (marks / f"started.{os.getpid()}").touch()
    while len(list(marks.glob("started.*"))) < 2:  # both running before either builds: both get a share
        time.sleep(0.01)

    def compute(k):
        (marks / f"{k}.{os.getpid()}").touch()  # who computed which part
        time.sleep(0.3)
        return np.full((5, 3), k, dtype=np.float32)

    result = shared_parts.build(path, 8, compute, poll_s=0.05)
    assert result.shape == (8, 5, 3) and all((result[k] == k).all() for k in range(8))
""")


def expected() -> np.ndarray:
    return np.stack([np.full((5, 3), k, dtype=np.float32) for k in range(8)])


def builders(tmp_path: Path, n: int) -> list[subprocess.Popen]:
    (tmp_path / "marks").mkdir(exist_ok=True)
    return [subprocess.Popen([sys.executable, "-c", BUILDER, str(tmp_path / "logits.npy"), str(tmp_path / "marks")])
            for _ in range(n)]


def test_two_processes_compute_each_part_once_and_both_get_the_whole(tmp_path):
    procs = builders(tmp_path, 2)
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    marks = [m.name.split(".") for m in (tmp_path / "marks").iterdir() if not m.name.startswith("started")]
    assert sorted(int(k) for k, _ in marks) == list(range(8))  # every part once, none twice
    assert len({pid for _, pid in marks}) == 2  # both did a share (8 parts of 0.3 s each)
    assert np.array_equal(np.load(tmp_path / "logits.npy"), expected())
    assert sorted(os.listdir(tmp_path)) == ["logits.npy", "marks"]  # the parts and claims cleared once joined


def test_a_dead_claim_is_taken_over_and_finished_parts_are_kept(tmp_path):
    parts = tmp_path / "logits.npy.parts"
    parts.mkdir()
    np.save(parts / "0.npy", np.full((5, 3), 0, dtype=np.float32))  # left by a stopped run
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (parts / "1.claim").write_text(f"{os.uname().nodename} {int(dead.stdout)}")  # its claimant is gone
    (parts / "2.claim").write_text("")  # its claimant died before writing who it was, two minutes ago
    os.utime(parts / "2.claim", (os.path.getmtime(parts / "2.claim") - 120,) * 2)
    calls = []

    def compute(k: int) -> np.ndarray:
        calls.append(k)
        return np.full((5, 3), k, dtype=np.float32)

    result = shared_parts.build(tmp_path / "logits.npy", 8, compute, poll_s=0.01)
    assert calls == list(range(1, 8)) and np.array_equal(result, expected())
    # read back afterwards: nothing computed again
    assert np.array_equal(shared_parts.build(tmp_path / "logits.npy", 8, calls.append), expected())
    assert calls == list(range(1, 8))


def test_a_part_a_live_process_holds_is_waited_for_not_computed_again(tmp_path):
    parts = tmp_path / "logits.npy.parts"
    parts.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a live process
    (parts / "3.claim").write_text(f"{os.uname().nodename} {holder.pid}")

    def holder_finishes() -> None:
        np.save(tmp_path / "3.tmp.npy", np.full((5, 3), 3, dtype=np.float32))
        (tmp_path / "3.tmp.npy").replace(parts / "3.npy")
        (parts / "3.claim").unlink()

    timer = threading.Timer(0.5, holder_finishes)
    timer.start()
    calls, told = [], []

    def compute(k: int) -> np.ndarray:
        calls.append(k)
        return np.full((5, 3), k, dtype=np.float32)

    try:
        result = shared_parts.build(tmp_path / "logits.npy", 8, compute, waiting=told.append, poll_s=0.01)
    finally:
        timer.join()
        holder.kill()
    assert np.array_equal(result, expected()) and 3 not in calls and told == [1]


def test_a_claim_in_this_process_s_own_name_is_an_earlier_life_s_and_is_taken_over(tmp_path):
    parts = tmp_path / "logits.npy.parts"
    parts.mkdir()
    (parts / "0.claim").write_text(f"{os.uname().nodename} {os.getpid()}")  # a restart that got the same pid
    result = shared_parts.build(tmp_path / "logits.npy", 8, lambda k: np.full((5, 3), k, dtype=np.float32))
    assert np.array_equal(result, expected()) and os.listdir(tmp_path) == ["logits.npy"]

"""Files the project writes whole: two writers of the same file at once both succeed and leave one
whole version (two trials converting the teacher's TFLite reference into the shared cache at once
failed one of them), a failed write leaves neither the file nor its temporary, and a file made once
makes a second process wait, saying so."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from compress.core.atomic import one_at_a_time, write_whole


def test_two_writers_of_one_file_at_once_both_succeed_and_one_whole_version_is_left(tmp_path):
    from compress.training import quantize

    target = tmp_path / "reference" / "teacher.tflite"
    bodies = [bytes([k]) * 2_000_000 for k in (1, 2)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(body: bytes) -> None:
        start.wait()
        try:
            for _ in range(60):
                quantize.write(body, target)
        except BaseException as exc:  # noqa: BLE001 - kept for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_bytes() in bodies
    assert [p.name for p in target.parent.iterdir()] == ["teacher.tflite"]  # no temporary left behind


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    target = tmp_path / "table.csv"

    def half(tmp):
        tmp.write_text("trial,val_accuracy\n0,")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_whole(target, half)
    assert list(tmp_path.iterdir()) == []
    write_whole(target, lambda tmp: tmp.write_text("trial\n0\n"))
    with pytest.raises(OSError):
        write_whole(target, half)
    assert target.read_text() == "trial\n0\n"  # the old file stands
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_second_process_waits_for_the_first_to_make_a_file_and_says_so(tmp_path, caplog):
    target = tmp_path / "teachers" / "abc"
    target.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('held', flush=True); time.sleep(1.5)"), str(target) + ".lock"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with caplog.at_level(logging.INFO), one_at_a_time(target, logging.getLogger("t"), "teacher abc"):
        waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert waited > 0.5
    assert "teacher abc: another process is making it; waiting for it" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO), one_at_a_time(target, logging.getLogger("t"), "teacher abc"):
        pass
    assert "waiting" not in caplog.text  # free: no word of waiting

"""MACs and parameter counts on models whose figures are worked out by hand; latency pairing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import group

from compress.measure import model_counts
from compress.measure import tflite as measure
from compress.teacher.model import build_teacher
from compress.training import quantize
from compress.training.students import build_student, channel_plan


def test_macs_of_the_teacher_by_hand():
    conv1 = 28 * 28 * 5 * 5 * 1 * 64
    conv2 = 14 * 14 * 5 * 5 * 64 * 128
    conv3 = 7 * 7 * 5 * 5 * 128 * 256
    dense = 3 * 3 * 256 * 256 + 256 * 10
    assert model_counts.count_macs(build_teacher()) == conv1 + conv2 + conv3 + dense


def test_student_width_scales_channels_and_macs():
    cfg = dict(kernel_size=3, activation="relu", head="flatten", dropout=0.0, min_channels=4)
    small = build_student(group("student", **cfg, width=0.25))
    assert channel_plan(0.25) == ((16, 32, 64), 64)
    expected = 28 * 28 * 9 * 1 * 16 + 14 * 14 * 9 * 16 * 32 + 7 * 7 * 9 * 32 * 64 + 576 * 64 + 64 * 10
    assert model_counts.count_macs(small) == expected
    big = build_student(group("student", **cfg, width=0.5))
    assert model_counts.count_macs(big) > 3 * expected
    assert model_counts.parameter_counts(small)[0] == small.count_params()


@pytest.mark.slow
def test_sizes_and_latency_pair(tmp_path):
    model = build_student(group("student", width=0.0625, head="gap", dropout=0.0))
    small = quantize.write(quantize.convert(model, "float32"), tmp_path / "small.tflite")
    big = quantize.write(quantize.convert(build_teacher(), "float32"), tmp_path / "big.tflite")
    size, gz = measure.file_sizes(small)
    assert size == small.stat().st_size and 0 < gz < size
    image = np.random.default_rng(0).random((28, 28, 1), dtype=np.float32)
    fast, slow = measure.latency_pair(small, big, image, runs=40, warmup=5)
    assert 0 < fast < slow


def test_the_machine_record_names_the_cpu_and_its_best_int8_instruction_set():
    from compress.measure import machine

    assert machine.isa_of({"sse4_2", "avx2", "avx512f", "avx512_vnni"}) == "avx512_vnni"
    assert machine.isa_of({"sse4_2", "avx2", "avx512f"}) == "avx512"
    assert machine.isa_of({"sse4_2", "avx2", "avx_vnni"}) == "avx_vnni"
    assert machine.isa_of({"sse4_2", "avx2"}) == "avx2"
    assert machine.isa_of(set()) == "baseline"
    assert machine.isa_of({"asimd", "asimddp"}, "aarch64") == "arm64_dotprod"
    here = machine.record()
    assert set(here) == {"cpu", "isa"} and here["cpu"] and here["isa"] in {n for n, _ in machine.ISA_LEVELS} | {
        "baseline", "arm64_neon", "arm64_dotprod"}
    # a figure stored before the machine was recorded says so, never a guess
    assert machine.describe(None, None) == machine.describe(float("nan"), "avx2") == "machine not recorded"
    assert machine.describe("Intel Xeon", "avx2") == "Intel Xeon (avx2)"

"""The distillation loss against a hand computation; the teacher never trains."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import colour_images, group

from compress.core.compat import keras
from compress.core.errors import ConfigError
from compress.data import batches
from compress.data.arrays import unit
from compress.training import distill
from compress.training.students import build_student


def reference_loss(labels, teacher_logits, student_logits, t, alpha):
    """Written out with NumPy, independently of the TensorFlow code."""

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p_student = softmax(student_logits)
    hard = -np.log(p_student[np.arange(len(labels)), labels])
    pt, ps = softmax(teacher_logits / t), softmax(student_logits / t)
    kl = np.sum(pt * np.log(pt / ps), axis=1)
    return np.mean(alpha * hard + (1 - alpha) * t * t * kl)


@pytest.mark.parametrize("t, alpha", [(1.0, 0.0), (4.0, 0.1), (10.0, 0.5), (2.5, 1.0)])
def test_loss_matches_hand_computation(t, alpha):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 16)
    teacher_logits = rng.normal(0, 3, (16, 10)).astype(np.float32)
    student_logits = rng.normal(0, 2, (16, 10)).astype(np.float32)
    loss = distill.DistillationLoss(t, alpha)(distill.pack_targets(labels, teacher_logits), student_logits)
    assert float(loss) == pytest.approx(reference_loss(labels, teacher_logits, student_logits, t, alpha), rel=1e-4)


def test_soft_term_scales_with_t_squared():
    """With matching shapes of distributions, the T^2 factor keeps the soft term's size:
    the gradient w.r.t. student logits ~ (p_s - p_t) / T, times T^2 -> ~T, never vanishing."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 8)
    teacher_logits = rng.normal(0, 1, (8, 10)).astype(np.float32)
    student_logits = rng.normal(0, 1, (8, 10)).astype(np.float32)
    soft = [float(distill.DistillationLoss(t, 0.0)(distill.pack_targets(labels, teacher_logits), student_logits))
            for t in (1.0, 2.0)]
    unscaled = [s / t**2 for s, t in zip(soft, (1.0, 2.0))]
    assert soft[1] / unscaled[1] == pytest.approx(4.0)
    assert soft[0] == pytest.approx(reference_loss(labels, teacher_logits, student_logits, 1.0, 0.0), rel=1e-4)


def test_bad_temperature_and_alpha_are_refused():
    with pytest.raises(ConfigError, match="distill.temperature=0"):
        distill.DistillationLoss(0, 0.5)
    with pytest.raises(ConfigError, match=r"distill.alpha=1.5: allowed \[0, 1\]"):
        distill.DistillationLoss(2, 1.5)


def _tiny_teacher():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Dense(10)(x)
    return keras.Model(inputs, keras.layers.Activation("softmax")(x))


@pytest.mark.parametrize("online", [False, True])
def test_teacher_weights_unchanged_by_distillation(tmp_path, online):
    from compress.teacher.model import logits_model

    rng = np.random.default_rng(2)
    x = rng.random((96, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 96)
    teacher = _tiny_teacher()
    before = [w.copy() for w in teacher.get_weights()]
    net = logits_model(teacher)
    logits = distill.cached_logits(lambda: net, x, tmp_path / "logits.npy", 10)
    assert (tmp_path / "logits.npy").is_file()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), logits)
    # read back, the teacher is never asked for
    unused = lambda: pytest.fail("the teacher loaded for logits on disk")  # noqa: E731
    again = distill.cached_logits(unused, x, tmp_path / "logits.npy", 10)
    np.testing.assert_array_equal(again, logits)
    np.save(tmp_path / "logits.npy", np.zeros((5, 10), np.float32))  # another split's file: computed anew
    np.testing.assert_allclose(distill.cached_logits(lambda: net, x, tmp_path / "logits.npy", 10), logits, atol=1e-6)
    targets = distill.pack_targets(y, logits)
    cfg = group("distill", temperature=3.0, alpha=0.2, batch_size=32)
    student = build_student(group("student", width=0.0625, head="flatten"))
    student_before = [w.copy() for w in student.get_weights()]
    history = distill.fit(student, x, targets, x[:32], targets[:32], cfg, epochs=1, learning_rate=1e-3, seed=0,
                          teacher=net if online else None)
    assert "loss" in history and np.isfinite(history["loss"][0])
    for a, b in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(student_before, student.get_weights()))


@pytest.mark.slow
def test_teacher_in_step_trains_as_the_cached_logits_do(tmp_path):
    """The benchmark's no-cache reference computes the same update as the cached path."""
    from compress.teacher.model import logits_model

    rng = np.random.default_rng(4)
    x = rng.random((64, 28, 28, 1), dtype=np.float32)
    net = logits_model(_tiny_teacher())
    logits = distill.cached_logits(lambda: net, x, tmp_path / "l.npy", 10)
    cached = distill.pack_targets(rng.integers(0, 10, 64), logits)
    blank = cached.copy()
    blank[:, 10:] = 0.0  # the in-step teacher refills these
    cfg = group("distill", temperature=3.0, alpha=0.2)
    arch = group("student", width=0.0625, head="flatten", dropout=0.0)
    a, b = build_student(arch), build_student(arch)
    b.set_weights(a.get_weights())
    start = [w.copy() for w in a.get_weights()]
    in_step = distill.TeacherInStep(b, net)
    for model, targets in ((a, cached), (in_step, blank)):
        distill.compile_for_distillation(model, cfg, 1e-2, 1)
        model.fit(batches.distillation(x, targets, 64, 0), epochs=1, verbose=0)  # one step over the whole batch
    assert any(not np.allclose(w0, w) for w0, w in zip(start, a.get_weights()))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-5)


def test_logits_of_a_softmax_teacher_are_its_pre_softmax_output():
    from compress.teacher.model import logits_model

    teacher = _tiny_teacher()
    x = np.random.default_rng(3).random((5, 28, 28, 1), dtype=np.float32)
    logits = logits_model(teacher).predict(x, verbose=0)
    probs = teacher.predict(x, verbose=0)
    soft = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(soft / soft.sum(1, keepdims=True), probs, rtol=1e-5, atol=1e-6)


def test_a_student_distilled_in_a_few_steps_predicts_with_its_data_s_batchnorm_statistics():
    """A folder of a few hundred images gives a student a dozen steps an epoch: at momentum 0.99 its BatchNorm
    moving averages keep most of their initial statistics, and it predicted near chance on data it had learned.
    fit recomputes them over the training images where the initial ones still weigh over 5%."""
    rng = np.random.default_rng(0)
    (x, y), (x_val, y_val) = colour_images(rng, 384), colour_images(rng, 200)
    logits = np.eye(4, dtype=np.float32)[y] * 6.0  # a confident teacher
    targets = distill.pack_targets(y, logits)
    cfg = group("distill", batch_size=128, temperature=2.0, alpha=0.5)
    student = build_student(group("student", width=0.2), num_classes=4, input_shape=(12, 12, 3))
    distill.fit(student, x, targets, x_val, distill.pack_targets(y_val, np.eye(4, dtype=np.float32)[y_val]), cfg,
                epochs=4, learning_rate=0.003, seed=0)
    assert np.mean(student.predict(unit(x_val), verbose=0).argmax(1) == y_val) > 0.9


def test_a_training_on_the_labels_alone_reads_no_teacher_and_learns_the_same_weights(tmp_path):
    """`distill.alpha=1` gives the soft term no weight: the context's labels-only targets (zeros for the
    logits) never load who teaches, and train the very weights that the teacher's logits would."""
    from compress.data.splits import Splits
    from compress.search.context import TrialContext

    rng = np.random.default_rng(0)
    x, y = colour_images(rng, 96)
    splits = Splits(x, y, x[:32], y[:32], x[:32], y[:32], np.arange(96), np.arange(32), "f" * 64, "here",
                    ("r", "g", "b", "y"), "npz")
    teacher = build_student(group("student", arch="cnn", width=0.25, head="gap"), 4, (12, 12, 3))
    ctx = TrialContext(splits, teacher, tmp_path / "t.keras", "a" * 64, tmp_path / "t.tflite", str(tmp_path),
                       tutor_path=tmp_path / "missing_ensemble.keras", tutor_sha="b" * 64)
    labels = ctx.labels_only()
    assert distill.labels_alone(group("distill", alpha=1.0)) and not distill.labels_alone(group("distill"))
    assert labels.train_targets.shape == (96, 8) and not labels.train_targets[:, 4:].any()
    assert np.array_equal(labels.train_targets[:, :4].argmax(1), y)
    assert labels._tutor_logits is None and ctx._targets is None  # nothing of who teaches was read
    # what a trial or a finalist on the labels takes, augmented views included (the default)
    cfg = group("distill", alpha=1.0, augment="flip_shift", views=2, batch_size=32)
    ready = ctx.ready_to_train(cfg)
    assert np.array_equal(ready.train_targets, labels.train_targets) and ready._tutor_logits is None
    view_images, view_logits = ready.training_views(cfg)
    assert view_images.shape[:2] == view_logits.shape[:2] == (2, 96) and not view_logits.any()
    taught = distill.pack_targets(y, rng.normal(0, 3, (96, 4)).astype(np.float32))
    for with_views in (False, True):
        weights = []
        for targets, logits in ((labels.train_targets, view_logits), (taught, rng.normal(0, 3, view_logits.shape))):
            keras.utils.set_random_seed(0)
            model = build_student(group("student", arch="cnn", width=0.0625, head="gap"), 4, (12, 12, 3))
            views = (view_images, logits.astype(np.float32)) if with_views else None
            distill.fit(model, x, targets, x[:0], targets[:0], cfg, 2, 3e-3, 0, views=views)
            weights.append(model.get_weights())
        assert all(np.array_equal(a, b) for a, b in zip(*weights)), with_views

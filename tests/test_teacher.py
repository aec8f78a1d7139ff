"""The user's teacher, layer for layer, and the committed trained teacher against its card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TEACHER, colour_images, needs_data, needs_teacher

from compress.core.compat import keras
from compress.core.errors import ConfigError
from compress.data import fashion_mnist as data
from compress.data.arrays import unit
from compress.teacher.model import build_teacher, load_keras, logits_model


def test_teacher_is_the_users_network():
    model = build_teacher()
    assert model.count_params() == 1_619_470
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 386
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["BatchNormalization", "Conv2D", "MaxPooling2D", "Dropout",
                     "BatchNormalization", "Conv2D", "MaxPooling2D", "Dropout",
                     "BatchNormalization", "Conv2D", "MaxPooling2D", "Dropout",
                     "Flatten", "Dense", "Activation", "Dropout", "Dense", "Activation"]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.padding, c.activation.__name__) for c in convs] == [
        (64, (5, 5), "same", "elu"), (128, (5, 5), "same", "elu"), (256, (5, 5), "same", "elu")]


@needs_teacher
def test_card_matches_the_committed_file():
    card = json.loads((TEACHER.parent / "card.json").read_text())
    assert card["sha256"] == data.sha256_of(TEACHER) and card["size_bytes"] == TEACHER.stat().st_size
    assert TEACHER.stat().st_size < 8 * 1024 * 1024
    for key in ("config", "seed", "epochs", "val_accuracy", "test_accuracy"):
        assert key in card
    assert card["params"] == 1_619_470


@pytest.mark.slow
@needs_teacher
@needs_data
def test_committed_teacher_scores_at_least_92_percent(splits):
    model = load_keras(TEACHER)
    probs = logits_model(model).predict(unit(splits.x_test), batch_size=1000, verbose=0)
    accuracy = float(np.mean(np.argmax(probs, axis=1) == splits.y_test))
    card = json.loads((TEACHER.parent / "card.json").read_text())
    assert accuracy >= 0.92
    assert accuracy == pytest.approx(card["test_accuracy"], abs=1e-4)


def test_a_file_that_is_not_a_keras_model_is_refused(tmp_path):
    bogus = tmp_path / "teacher.keras"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match=r"teacher.path=.*teacher.keras: not a loadable Keras model"):
        load_keras(bogus)


def test_a_teacher_trained_in_a_few_steps_predicts_with_its_data_s_batchnorm_statistics():
    """80 steps at Keras' momentum 0.99 leave 45% of BatchNorm's initial statistics in its moving averages: a
    teacher that learned its training batches perfectly still predicted near chance (46.5% on 4 classes told
    apart by colour alone). Its statistics are recomputed over the training images, layer by layer."""
    from compress.data.splits import Splits
    from compress.teacher.model import train_teacher
    from compress.training import batchnorm

    rng = np.random.default_rng(0)
    (x, y), (x_test, y_test) = colour_images(rng, 480), colour_images(rng, 200)
    val = np.zeros(len(x), bool)
    val[::8] = True
    splits = Splits(x[~val], y[~val], x[val], y[val], x_test, y_test, train_index=np.flatnonzero(~val),
                    val_index=np.flatnonzero(val), fingerprint="colours", source="colours",
                    class_names=("r", "g", "b", "y"), kind="npz", flips=False)
    train_cfg = {"epochs": 4, "batch_size": 128, "learning_rate": 0.002, "weight_decay": 1e-4, "augment": False,
                 "seed": 0}
    # 20 epochs of Fashion-MNIST, and the one epoch of the search's pruning phase, are left as they trained
    assert batchnorm.needs_recompute(16) and not batchnorm.needs_recompute(430 * 20)
    assert not batchnorm.needs_recompute(430) and batchnorm.needs_recompute(250)
    model, _, note = train_teacher(train_cfg, splits, verbose=0)
    assert note.startswith("recomputed over the 420 training images (3 layers): 16 training steps left 85%")
    first = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)][0]
    pixels = unit(splits.x_train).reshape(-1, 3)
    np.testing.assert_allclose(first.moving_mean.numpy(), pixels.mean(0), rtol=1e-4)
    np.testing.assert_allclose(first.moving_variance.numpy(), pixels.var(0), rtol=1e-4)
    assert np.mean(model.predict(unit(x_test), verbose=0).argmax(1) == y_test) > 0.9

"""The user's teacher, layer for layer, and the committed trained teacher against its card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TEACHER, needs_data, needs_teacher

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

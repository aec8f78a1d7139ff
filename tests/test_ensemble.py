"""The stronger teacher (compress/teacher/ensemble.py, tutor.py): members that train an epoch at a time
and resume, weights that travel between Keras versions as arrays, augmentation in numpy, and the
option that picks who teaches, with its one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compose_config

from compress.config.validate import validate
from compress.core.compat import keras
from compress.core.errors import ConfigError
from compress.data import arrays
from compress.finalize.recipe import recipe_hash
from compress.teacher import ensemble
from compress.teacher.model import logits_model

RECIPE = {"arch": "user", "width": 4, "epochs": 2, "batch_size": 32, "optimizer": "adamw", "learning_rate": 0.002,
          "weight_decay": 0.0001, "flip": True, "max_shift": 2, "erase": 0.5, "seed": 0}


def images(n=64, shape=(12, 12, 1), seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.uniform(0, 0.2, (n, *shape)).astype(np.float32)
    x[y == 1, : shape[0] // 2] += 0.7  # a learnable cue per class
    x[y == 2, :, : shape[1] // 2] += 0.7
    return np.clip(x, 0, 1), y


def test_augmentation_flips_shifts_and_erases_within_the_image():
    x, _ = images()
    out = ensemble.augment(x, np.random.default_rng(1), flip=True, max_shift=2, erase=1.0)
    assert out.shape == x.shape and out.dtype == x.dtype and 0 <= out.min() and out.max() <= 1
    assert (out == 0).sum() > (x == 0).sum()  # every image lost a rectangle
    same = ensemble.augment(x, np.random.default_rng(1), flip=True, max_shift=2, erase=1.0)
    assert np.array_equal(out, same)  # a seeded draw: the same epoch is the same copy
    assert np.array_equal(ensemble.augment(x, np.random.default_rng(1), False, 0, 0.0), x)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["user", "resnet"])
def test_a_member_stopped_after_an_epoch_resumes_and_its_weights_rebuild_it(tmp_path, arch):
    x, y = images()
    recipe = ensemble.member_recipe({**RECIPE, "arch": arch}, 0, x.shape[1:], 3)
    state = ensemble.train_member(keras, recipe, x, y, x[:30], y[:30], tmp_path, deadline=0.0)
    assert state["epochs_done"] == 0 and not state["finished"]  # past its deadline before the first epoch
    first = dict(recipe, epochs=1, member=1)
    ensemble.train_member(keras, first, x, y, x[:30], y[:30], tmp_path / "one")
    state = ensemble.train_member(keras, recipe, x, y, x[:30], y[:30], tmp_path)
    assert state["finished"] and state["epochs_done"] == 2 and len(state["history"]) == 2
    model, stored = ensemble.load_weights(keras, tmp_path / "weights.npz")
    assert stored["recipe"] == recipe and model.output_shape == (None, 3)
    assert arrays.keras_accuracy(model, x[:30], y[:30]) == pytest.approx(state["val_accuracy"])
    both = ensemble.assemble(keras, [model, ensemble.load_weights(keras, tmp_path / "one" / "weights.npz")[0]],
                             x.shape[1:])
    mean = (model.predict(x, verbose=0) + ensemble.load_weights(keras, tmp_path / "one" / "weights.npz")[0]
            .predict(x, verbose=0)) / 2
    assert np.allclose(both.predict(x, verbose=0), mean, atol=1e-5)


def test_the_recipe_hash_names_every_key_the_member_and_the_data():
    base = ensemble.recipe_hash(ensemble.member_recipe(RECIPE, 0, (28, 28, 1), 10), "f" * 64, 123)
    assert base == ensemble.recipe_hash(ensemble.member_recipe(dict(RECIPE), 0, (28, 28, 1), 10), "f" * 64, 123)
    others = [ensemble.recipe_hash(ensemble.member_recipe({**RECIPE, "erase": 0.0}, 0, (28, 28, 1), 10), "f" * 64, 123),
              ensemble.recipe_hash(ensemble.member_recipe(RECIPE, 1, (28, 28, 1), 10), "f" * 64, 123),
              ensemble.recipe_hash(ensemble.member_recipe(RECIPE, 0, (28, 28, 1), 10), "e" * 64, 123)]
    assert base not in others and len(set(others)) == 3


def test_who_teaches_is_part_of_the_recipe_only_when_it_is_not_the_user_s_teacher():
    cfg = compose_config()
    user = recipe_hash(cfg)
    assert recipe_hash(compose_config(["ensemble=user64"])) == user  # an unused ensemble changes nothing
    taught = recipe_hash(compose_config(["distill.teacher=ensemble"]))
    assert taught != user and taught != recipe_hash(compose_config(["distill.teacher=ensemble", "ensemble=user64"]))


@pytest.mark.parametrize("override, message", [
    ("distill.teacher=crowd", "distill.teacher=crowd: allowed user, ensemble"),
    ("ensemble.arch=vit", "ensemble.arch=vit: allowed resnet, user"),
    ("ensemble.erase=1.5", "ensemble.erase=1.5: allowed [0, 1]"),
    ("ensemble.members=0", "ensemble.members=0: must be >= 1"),
])
def test_bad_ensemble_options_are_one_line(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(compose_config([override]))


def test_an_ensemble_missing_from_disk_is_one_line(tmp_path):
    from compress.data.splits import Splits
    from compress.teacher import tutor

    x, y = images()
    splits = Splits(x, y, x, y, x, y, np.arange(64), np.arange(64), "f" * 64, "here", ("a", "b", "c"), "npz")
    with pytest.raises(ConfigError, match=r"distill.teacher=ensemble: no ensemble at .*python -m compress.ensemble"):
        tutor.load(tmp_path / "none.keras", splits)


def test_a_teacher_s_output_is_read_as_logits_or_probabilities_and_said(caplog):
    x, _ = images(shape=(6, 6, 1))
    inputs = keras.Input((6, 6, 1))
    scores = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    logits = keras.Model(inputs, scores)
    probs = keras.Model(inputs, keras.layers.Lambda(lambda t: keras.activations.softmax(t))(scores))
    caplog.set_level("INFO")
    assert logits_model(logits, x) is logits
    assert "read as logits" in caplog.text
    recovered = logits_model(probs, x).predict(x, verbose=0)
    reference = logits.predict(x, verbose=0)
    # log-probabilities are the logits less a per-row constant: the same softmax
    assert np.allclose(recovered - recovered.mean(1, keepdims=True), reference - reference.mean(1, keepdims=True),
                       atol=1e-4)
    assert "read as probabilities" in caplog.text

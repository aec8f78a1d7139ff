"""A study on data of the user's own: its data recorded once and checked by the later stages, its
MLflow names its own, and the default study kept for Fashion-MNIST (one line each)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compose_config
from omegaconf import OmegaConf

from compress.config import study_data
from compress.config.validate import validate
from compress.core.errors import ConfigError, DataError
from compress.measure.scoring import load_npz

FOLDER = {"source": "image_folder", "path": "/data/pets", "val_share": 0.1, "split_seed": 0, "fraction": 1.0,
          "channels": None, "image_size": [32, 32]}


def test_other_data_under_the_default_study_is_one_line():
    cfg = compose_config(["data=image_folder", "data.path=/data/pets"])
    with pytest.raises(ConfigError, match=r"data=image_folder under the default study .*paths.study=NAME"):
        validate(cfg)
    validate(compose_config(["data=image_folder", "data.path=/data/pets", "paths.study=pets"]))


def test_mlflow_names_follow_the_study_and_never_name_fashion_mnist_for_other_data():
    pets = compose_config(["data=image_folder", "data.path=/data/pets", "paths.study=pets"])
    assert (pets.tracking.experiment, pets.tracking.registered_model) == ("pets-compression", "pets-winner")
    smoke = compose_config(["experiment=smoke"])
    assert smoke.tracking.experiment == "fashion-mnist-compression-smoke"  # Fashion-MNIST studies as before
    assert compose_config().tracking.registered_model == "fashion-mnist-winner"


def test_the_record_composes_the_study_and_refuses_other_data(tmp_path):
    study_data.remember(OmegaConf.create(FOLDER), tmp_path, "pets", "image_folder", "a" * 64, "/data/pets")
    overrides = study_data.overrides(tmp_path, "pets")
    assert overrides[0] == "data=image_folder" and "data.image_size=[32, 32]" in overrides
    assert "data.channels=null" in overrides and "data.path=/data/pets" in overrides
    composed = compose_config(["paths.study=pets", *overrides])
    assert composed.data.source == "image_folder" and list(composed.data.image_size) == [32, 32]
    study_data.check(tmp_path, "pets", "image_folder", "a" * 64, "/data/pets")  # the same data: fine
    with pytest.raises(DataError, match=r"study pets ran on image_folder at /data/pets \(digest aaaaaaaaaaaa\); "
                                        r"this data, image_folder at /data/pets2, reads as digest bbbbbbbbbbbb"):
        study_data.check(tmp_path, "pets", "image_folder", "b" * 64, "/data/pets2")
    with pytest.raises(DataError, match=r"ran on image_folder at /data/pets, not fashion_mnist: add "
                                        r"data=image_folder data.path=/data/pets"):
        study_data.check_source(tmp_path, "pets", "fashion_mnist")
    assert study_data.overrides(tmp_path, "another") == [] and study_data.read(tmp_path, "another") is None


def test_verify_reads_an_npz_made_for_data_npz_and_says_which_arrays(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "own.npz"
    np.savez(path, x_train=rng.integers(0, 255, (8, 6, 6, 3), dtype=np.uint8), y_train=np.arange(8) % 2,
             x_test=rng.integers(0, 255, (4, 6, 6, 3), dtype=np.uint8), y_test=np.array([0, 1, 1, 0]))
    x, y, note = load_npz(path)
    assert x.shape == (4, 6, 6, 3) and list(y) == [0, 1, 1, 0] and note == "x_test/y_test, x read as pixels 0-255"
    np.savez(path, x=x, y=y)
    assert load_npz(path)[2] == "x read as floats in [0, 1]"
    np.savez(path, images=x)
    with pytest.raises(DataError, match="not an .npz with arrays x and y, or x_test and y_test"):
        load_npz(path)

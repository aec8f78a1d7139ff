"""Augmented views: a pure function of (seed, view, image); the cached teacher logits of view k are
the teacher's logits on view k; the training pipeline pairs each served view with its own logits."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEACHER, needs_data, needs_teacher

from compress.training import views


def images(n: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 28, 28, 1)) / 255.0).astype(np.float32)


def test_view_zero_is_the_image_and_other_views_are_flips_and_shifts_of_it():
    x, index = images(), np.arange(100, 112)
    assert np.array_equal(views.make_view(x, index, 0, seed=0), x)
    v = views.make_view(x, index, 3, seed=0, max_shift=2)
    flip, dy, dx = views.view_params(index, 3, seed=0, max_shift=2)
    for i in range(len(x)):
        src = x[i, :, ::-1] if flip[i] else x[i]
        expected = np.zeros_like(src)
        ys, xs = slice(max(0, dy[i]), 28 + min(0, dy[i])), slice(max(0, dx[i]), 28 + min(0, dx[i]))
        yt, xt = slice(max(0, -dy[i]), 28 + min(0, -dy[i])), slice(max(0, -dx[i]), 28 + min(0, -dx[i]))
        expected[ys, xs] = src[yt, xt]  # content moves by (dy, dx); the uncovered border is zero
        assert np.array_equal(v[i], expected), i
    assert np.all(np.abs(dy) <= 2) and np.all(np.abs(dx) <= 2)


def test_views_depend_on_the_image_index_not_on_its_position_or_the_slice():
    x, index = images(20), np.arange(500, 520)
    whole = views.make_view(x, index, 5, seed=7)
    order = np.random.default_rng(1).permutation(20)
    assert np.array_equal(views.make_view(x[order], index[order], 5, seed=7), whole[order])
    assert np.array_equal(views.make_view(x[:6], index[:6], 5, seed=7), whole[:6])
    assert not np.array_equal(views.make_view(x, index, 5, seed=8), whole)  # the seed matters
    assert not np.array_equal(views.make_view(x, index, 6, seed=7), whole)  # so does the view


def test_view_draws_cover_flips_and_every_shift():
    flip, dy, dx = views.view_params(np.arange(5000), 1, seed=0, max_shift=2)
    assert 0.45 < flip.mean() < 0.55
    assert set(dy.tolist()) == set(range(-2, 3)) == set(dx.tolist())


@needs_teacher
def test_cached_logits_of_view_k_are_the_teachers_logits_on_view_k(tmp_path):
    from compress.teacher import model as teacher

    model = teacher.logits_model(teacher.load_keras(TEACHER))
    x, index = images(16, seed=3), np.arange(16) * 7
    path = views.cache_path(tmp_path, "sha", "data", index, 3, 0, 2)
    logits = views.teacher_view_logits(lambda: model, x, index, 3, 0, 2, path, 10)
    assert logits.shape == (3, 16, 10) and path.is_file()
    for k in range(3):
        again = model.predict(views.make_view(x, index, k, 0, 2), verbose=0)
        np.testing.assert_allclose(logits[k], again, rtol=1e-5, atol=1e-5)
    unused = lambda: pytest.fail("the teacher loaded for views on disk")  # noqa: E731
    # read, not recomputed
    assert np.array_equal(views.teacher_view_logits(unused, x, index, 3, 0, 2, path, 10), logits)


def test_the_pipeline_serves_each_view_with_its_own_logits():
    from compress.data import batches

    n, k = 40, 4
    x, index = images(n, seed=5), np.arange(n)
    all_views = views.all_views(x, index, k, 0, 2)
    # logits that name their (view, image): the pipeline must hand back the pair it drew
    logits = np.zeros((k, n, 10), np.float32)
    logits[..., 0] = np.arange(k)[:, None]
    logits[..., 1] = np.arange(n)[None, :]
    labels = np.arange(n) % 10
    seen_views = set()
    for xb, yb in batches.views(all_views, logits, labels, 8, seed=0):
        xb, yb = xb.numpy(), yb.numpy()
        for image, target in zip(xb, yb):
            view, i = int(target[10]), int(target[11])
            assert np.argmax(target[:10]) == labels[i]
            assert np.array_equal(np.round(image * 255).astype(np.uint8), all_views[view, i])
            seen_views.add(view)
    assert len(seen_views) > 1


def test_views_are_exact_uint8_round_trips():
    x = np.round(images(8) * 255) / 255
    stored = views.all_views(x.astype(np.float32), np.arange(8), 2, 0, 2)
    assert stored.dtype == np.uint8
    np.testing.assert_array_equal(stored[0], np.round(x * 255).astype(np.uint8))


@pytest.mark.parametrize("bad", ["augment=rotate", "views=0", "max_shift=9"])
def test_bad_view_settings_are_refused_in_one_line(bad):
    from conftest import compose_config

    from compress.config.validate import validate
    from compress.core.errors import ConfigError

    with pytest.raises(ConfigError, match=f"distill.{bad.split('=')[0]}"):
        validate(compose_config([f"distill.{bad}"]))


def test_data_that_must_not_flip_gets_views_that_only_shift_and_a_cache_of_their_own():
    """`data.flip=false` (a flipped digit is another digit): no view is flipped, and its teacher logits
    are cached apart from the flipping views' (whose file names are unchanged)."""
    from compress.training import views

    index = np.arange(400)
    flipping = np.concatenate([views.view_params(index, k, 0)[0] for k in range(1, 5)])
    assert flipping.any()
    assert not np.concatenate([views.view_params(index, k, 0, flips=False)[0] for k in range(1, 5)]).any()
    shifts = [views.view_params(index, 3, 0, flips=f)[1:] for f in (True, False)]
    assert all(np.array_equal(a, b) for a, b in zip(*shifts))  # the same shifts either way
    with_flips = views.cache_path("c", "t" * 16, "f" * 12, index, 8, 0, 2)
    assert with_flips.name.endswith("_m2.npy") and views.cache_path("c", "t" * 16, "f" * 12, index, 8, 0, 2,
                                                                      flips=False).name.endswith("_m2_noflip.npy")


def test_data_flip_reaches_the_splits_and_leaves_fashion_mnist_s_recipe_hash_alone():
    from conftest import compose_config

    from compress.finalize.recipe import recipe_hash

    assert recipe_hash(compose_config(["data.flip=true"])) == recipe_hash(compose_config())
    assert recipe_hash(compose_config(["data.flip=false"])) != recipe_hash(compose_config())
    npz = compose_config(["data=npz", "data.path=x.npz", "paths.study=mine"])
    assert recipe_hash(npz) != recipe_hash(compose_config(["data=npz", "data.path=x.npz", "paths.study=mine",
                                                           "data.flip=false"]))


@needs_data
@needs_teacher
def test_a_trial_s_training_time_leaves_out_the_views_logits_it_computes_once(small_cfg, tmp_path, monkeypatch):
    """The views' teacher logits are made once per teacher, data and view settings, like the context:
    the first trial of a process makes them before its timed training (they took 337 s of a first
    trial's time_train_s at 8 views of the full training split)."""
    from compress.search import context, trial
    from compress.training import views as view_stage
    from compress.training.recipe import StudentRecipe

    small_cfg.paths.cache_dir = str(tmp_path / "cache")
    small_cfg.distill.augment, small_cfg.distill.views = "flip_shift", 2
    small_cfg.coreml.enabled, small_cfg.tracking.enabled = False, False
    small_cfg.prune.sparsity, small_cfg.quant.mode = 0.0, "int8"
    monkeypatch.setattr(context, "_VIEWS", {})  # none made by an earlier test in this process
    monkeypatch.setattr(context, "_CACHE", {})
    phases = []
    make_logits, train = view_stage.teacher_view_logits, StudentRecipe.train
    monkeypatch.setattr(view_stage, "teacher_view_logits",
                        lambda *a, **k: (phases.append("views"), make_logits(*a, **k))[1])
    monkeypatch.setattr(StudentRecipe, "train", lambda *a, **k: (phases.append("training"), train(*a, **k))[1])
    metrics = trial.run_trial(small_cfg, tmp_path / "out")
    assert phases == ["views", "training"]
    assert metrics["time_train_s"] > 0 and (tmp_path / "out" / "model.tflite").is_file()

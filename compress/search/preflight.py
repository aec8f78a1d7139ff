"""Everything checkable before a study writes a store: the config's values (config.validate), the
data files (the data stage's own check), the teacher file (the teacher stage's), the tracking store.

Named in conf/search/default.yaml (the values, then `stages`), so the sweeper runs it on the corners of the
search space before the first trial; each trial's job, finalize and bench run it too.
"""

from __future__ import annotations

from pathlib import Path

from compress.config import study_data as record
from compress.config import validate
from compress.core.errors import ConfigError
from compress.core.options import DEFAULT_TEACHER_PATH
from compress.data import sources


def preflight(cfg, check_data: bool = True) -> None:
    """Everything checkable before a study starts: ranges, the tracking store, the data files,
    the teacher file.

    The sweeper runs its two halves (`validate.validate`, then `stages`) over the configs at the corners of
    the search space; the sweep's job runs it before its trial trains anything and passes check_data=False,
    because the trial reads and checks the same files itself, first, before anything is written.
    """
    validate.validate(cfg)
    stages(cfg, check_data)


def stages(cfg, check_data: bool = True) -> None:
    """The checks after the config's values (`validate.validate`): the tracking store, the data files, the
    teacher file. The sweeper runs the values at every corner of the space before these (a model is loaded
    here), so both are named in conf/search/default.yaml."""
    validate.check_tracking(cfg.tracking.uri)
    fashion = str(cfg.data.get("source", "fashion_mnist")) == "fashion_mnist"
    shape = None
    if check_data:
        *shape, splits = _checked_data(cfg.data, str(cfg.paths.cache_dir))
        if splits is not None:  # the study's data, recorded (and a different digest refused) before any store
            record.remember(cfg.data, str(cfg.paths.sweeps_dir), str(cfg.paths.study), splits.kind,
                            splits.fingerprint, splits.source)
    if fashion:
        shape = sources.FASHION_MNIST_SHAPE
    teacher_file = Path(cfg.teacher.path) if cfg.teacher.path else None
    if teacher_file is not None and str(cfg.teacher.path) != DEFAULT_TEACHER_PATH and not teacher_file.is_file():
        raise ConfigError(f"teacher.path={cfg.teacher.path}: no such file (point it at a trained Keras model)")
    if not fashion and str(cfg.teacher.path) == DEFAULT_TEACHER_PATH:
        teacher_file = None  # the committed teacher is Fashion-MNIST's: other data trains its own (cached)
    if teacher_file is not None and teacher_file.is_file():
        with open(teacher_file, "rb") as handle:
            head = handle.read(8)
        if not (head.startswith(b"PK") or head.startswith(b"\x89HDF")):
            raise ConfigError(f"teacher.path={cfg.teacher.path}: not a Keras model file (.keras or .h5)")
        if shape is not None:  # a trial reads the data itself next, and checks its teacher against it there
            _teacher_fits(teacher_file, *shape)


_CHECKED: set = set()
_SHAPES: dict = {}


def _teacher_fits(path: Path, image_shape: tuple, num_classes: int) -> None:
    """Load the teacher once per process and file version and check it fits the data's images and
    classes (one line, before any store is written, instead of a Keras traceback in a trial)."""
    key = ("teacher", str(path.resolve()), path.stat().st_mtime_ns, tuple(image_shape), num_classes)
    if key not in _CHECKED:
        from compress.teacher import model as teacher  # TensorFlow, heavy: a bad value is refused before it loads

        teacher.check_fits(teacher.load_keras(path), path, tuple(image_shape), num_classes)
        _CHECKED.add(key)


def _checked_data(data_cfg, cache_dir: str) -> tuple:
    """The data source's own check, once per process and setting (the sweeper checks several corners);
    the images' shape and the class count."""
    key = ("data", repr(sorted(dict(data_cfg).items())), cache_dir)
    if key not in _SHAPES:
        _SHAPES[key] = sources.check(data_cfg, cache_dir)
    return _SHAPES[key]

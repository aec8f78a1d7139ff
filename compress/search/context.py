"""What every trial of a process shares, loaded once: the data splits, the teacher, its
cached logits and its float32 TFLite reference file. Who teaches and the training targets made from
its logits are loaded on first use: a process that trains nothing (finalize exporting finalists
already trained, or handing them to worker processes) never loads the ensemble, nor does one whose
logits are all on disk already."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from compress.core import atomic
from compress.core.compat import keras
from compress.data import sources
from compress.data.fashion_mnist import sha256_of
from compress.data.splits import Splits
from compress.teacher import cards
from compress.teacher import model as teacher
from compress.teacher import tutor as tutor_stage
from compress.teacher.model import logits_model
from compress.training import distill, quantize, views

log = logging.getLogger(__name__)
_CACHE: dict = {}


@dataclass
class TrialContext:
    splits: Splits
    teacher: keras.Model
    teacher_path: Path
    teacher_sha: str
    teacher_tflite: Path  # the teacher as float32 TFLite: the latency reference
    cache_dir: str = ".cache"
    # who teaches (distill.teacher): the file of an ensemble, or None for the user's teacher
    tutor_path: Path | None = None
    tutor_sha: str = ""
    labels_alone: bool = False  # a training on the labels alone: zeros stand for every teacher logit (labels_only)
    _tutor_logits: keras.Model | None = field(default=None, init=False, repr=False)
    _targets: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.tutor_sha = self.tutor_sha or self.teacher_sha

    @property
    def tutor_logits(self) -> keras.Model:
        """Who teaches, up to its logits, read once."""
        if self._tutor_logits is None:
            tutor = self.teacher if self.tutor_path is None else tutor_stage.load(self.tutor_path, self.splits)
            self._tutor_logits = logits_model(tutor, self.splits.x_val[:256])
        return self._tutor_logits

    @property
    def train_targets(self) -> np.ndarray:
        """Packed [one-hot | teacher logits] for the train split."""
        return self._packed()[0]

    @property
    def val_targets(self) -> np.ndarray:
        return self._packed()[1]

    def ready_to_train(self, distill_cfg=None) -> TrialContext:
        """This context with the teacher's logits read (or computed once), and with `distill_cfg` its
        augmented views' logits too: before a timed training, so that its time is the student's alone
        (the views' logits took 337 s of a first trial's training at 8 views of 55,000 images). On the labels
        alone (`distill.alpha=1`) it is the labels-only copy: no teacher logits are read for it."""
        ctx = self.labels_only() if distill_cfg is not None and distill.labels_alone(distill_cfg) else self
        ctx._packed()
        if distill_cfg is not None:
            ctx.training_views(distill_cfg)
        return ctx

    def labels_only(self) -> TrialContext:
        """A copy whose targets carry zeros where the teacher's logits go: for a training on the labels
        alone (`distill.alpha=1`, the loss gives the soft term no weight), which then neither loads who teaches
        nor computes its logits (the bench's undistilled student read the ensemble's logits for nothing)."""
        copy = replace(self, labels_alone=True)
        s = self.splits
        copy._targets = tuple(distill.pack_targets(y, np.zeros((len(y), s.num_classes), np.float32))
                              for y in (s.y_train, s.y_val))
        return copy

    def _packed(self) -> tuple[np.ndarray, np.ndarray]:
        if self._targets is None:
            s, cache = self.splits, self.cache_dir
            self._targets = tuple(
                distill.pack_targets(y, distill.cached_logits(
                    lambda: self.tutor_logits, x,
                    distill.logits_cache_path(cache, self.tutor_sha, s.fingerprint, index), s.num_classes))
                for x, y, index in ((s.x_train, s.y_train, s.train_index), (s.x_val, s.y_val, s.val_index)))
        return self._targets

    def distillation_targets(self, teacher_logits: str) -> tuple[np.ndarray, keras.Model | None]:
        """Training targets and, for `online`, the teacher model that fills in their logits on
        every batch; `cached` uses the logits read from disk as they are."""
        if teacher_logits != "online":
            return self.train_targets, None

        targets = self.train_targets.copy()
        targets[:, self.splits.num_classes:] = 0.0  # the teacher fills these on every batch
        return targets, self.tutor_logits


    def training_views(self, distill_cfg) -> tuple[np.ndarray, np.ndarray] | None:
        """For `distill.augment` other than none: every view of the training images (uint8) and the
        teacher's logits for each, computed once per teacher, data and view settings and kept
        (on disk for the logits, in this process for both)."""
        if distill_cfg.get("augment", "none") == "none":
            return None
        n_views, seed, shift = int(distill_cfg.views), int(distill_cfg.view_seed), int(distill_cfg.max_shift)
        flips = self.splits.flips
        teacher = "labels alone" if self.labels_alone else self.tutor_sha
        key = (teacher, self.splits.fingerprint, len(self.splits.x_train), n_views, seed, shift, flips)
        if key not in _VIEWS:
            s = self.splits
            if self.labels_alone:  # the loss gives the views' logits no weight either
                logits = np.zeros((n_views, len(s.x_train), s.num_classes), np.float32)
            else:
                path = views.cache_path(self.cache_dir, self.tutor_sha, s.fingerprint, s.train_index, n_views, seed,
                                        shift, flips)
                if not path.is_file():
                    log.info("teacher logits for %d augmented views of %s training images -> %s (once)", n_views,
                             f"{len(s.x_train):,}", path)
                logits = views.teacher_view_logits(lambda: self.tutor_logits, s.x_train, s.train_index, n_views, seed,
                                                   shift, path, s.num_classes, flips)
            _VIEWS.clear()
            _VIEWS[key] = (views.all_views(s.x_train, s.train_index, n_views, seed, shift, flips), logits)
        return _VIEWS[key]


_VIEWS: dict = {}


def teacher_tflite(model: keras.Model, sha: str, cache_dir: str | Path) -> Path:
    """The teacher converted to float32 TFLite once per teacher file."""
    path = Path(cache_dir) / "reference" / f"teacher_{sha[:16]}_float32.tflite"
    with atomic.one_at_a_time(path, log, "the teacher's TFLite reference"):  # trials started together make it once
        if not path.is_file():
            log.info("teacher as float32 TFLite (the latency reference) -> %s (once)", path)
            quantize.write(quantize.convert(model, "float32"), path)
    return path


@dataclass(frozen=True)
class Setup:
    """Where a trial's shared context comes from, read from the config once: the data, the teacher,
    who teaches (distill.teacher: the user's teacher or the ensemble), and the folders of the caches
    and the study's records."""

    data: Any  # the data group (DictConfig)
    teacher: Any  # the teacher group
    cache_dir: str
    sweeps_dir: str
    study: str
    tutor: str  # user or ensemble
    ensemble: Any  # the ensemble group, or None

    @classmethod
    def of(cls, cfg) -> Setup:
        return cls(cfg.data, cfg.teacher, str(cfg.paths.cache_dir), str(cfg.paths.sweeps_dir), str(cfg.paths.study),
                   str(cfg.distill.get("teacher", "user")), cfg.ensemble if "ensemble" in cfg else None)

    @property
    def key(self) -> tuple:
        """What a context built for this setup depends on."""
        return (json.dumps(OmegaConf.to_container(self.data, resolve=True), sort_keys=True), self.teacher.path,
                self.cache_dir, self.tutor, self.ensemble.path if self.ensemble is not None else None)

    def load(self) -> TrialContext:
        """The shared context, built on first use and then reused by later trials of this process."""
        key = self.key
        if key in _CACHE:
            return _CACHE[key]
        log.info("set-up (once per process): the data, the teacher and its TFLite reference")
        splits = sources.load_from_config(self.data, self.cache_dir)
        log.info("data: %s train / %s validation / %s test images (fraction %g)", f"{len(splits.y_train):,}",
                 f"{len(splits.y_val):,}", f"{len(splits.y_test):,}", float(self.data.fraction))
        model, path = teacher.obtain(self.teacher, splits, self.cache_dir, verbose=2)
        sha = sha256_of(path)
        if splits.kind != "fashion_mnist":  # the study's own teacher card: the report reads it
            cards.card_for_study(model, path, splits, Path(self.sweeps_dir) / self.study / "teacher")
        tutor_path, tutor_sha = None, sha
        if self.tutor == "ensemble":
            tutor_path = tutor_stage.target_path(self.ensemble, splits.kind, self.sweeps_dir, self.study)
            tutor_stage.check_present(tutor_path)  # one line now; the model itself is read when a student trains
            tutor_sha = sha256_of(tutor_path)
        ctx = TrialContext(splits, model, path, sha, teacher_tflite(model, sha, self.cache_dir), self.cache_dir,
                           tutor_path, tutor_sha)
        _CACHE.clear()  # one context per process is enough; a new data or teacher setting replaces it
        _CACHE[key] = ctx
        return ctx


def get(cfg) -> TrialContext:
    """The shared context for `cfg`, built on first use and then reused by later trials."""
    return Setup.of(cfg).load()

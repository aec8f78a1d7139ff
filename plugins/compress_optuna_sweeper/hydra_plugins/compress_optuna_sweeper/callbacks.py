"""The sweep's callbacks: classes named by dotted path in the sweeper's `callbacks`, built with the
sweep's composed config in the main process (workers share its study), each told of the study's
start, each trial's end and the study's end. A callback's failure is logged, never the end of the
study."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any, List

import optuna
from hydra_plugins.compress_optuna_sweeper.workers import WORKER_ENV

log = logging.getLogger(__name__)


class Callbacks:
    """The configured callbacks, built when the study starts."""

    def __init__(self, paths: List[str]):
        self.paths = list(paths)
        self.built: List[Any] = []
        self.lock = threading.Lock()  # trials at once through a launcher end in several threads

    def start(self, study: optuna.Study, config: Any) -> None:
        """Build each callback with `config` and call its on_study_start (not in a worker process)."""
        if os.environ.get(WORKER_ENV):
            return
        for path in self.paths:
            module_name, _, name = path.rpartition(".")
            self.built.append(getattr(importlib.import_module(module_name), name)(config))  # named in config
        self.call("on_study_start", study)

    def call(self, hook: str, *args: Any) -> None:
        with self.lock:
            self._call(hook, *args)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.built:
            fn = getattr(cb, hook, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - bookkeeping must not stop the trials
                log.warning("%s.%s failed: %s", type(cb).__name__, hook, f"{type(exc).__name__}: {exc}"[:300])

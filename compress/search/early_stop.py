"""Stop a trial early when it cannot reach the study's front at its size.

Optuna cannot prune multi-objective trials (optuna issue 3450), so the rule is ours:

After distillation epoch e (one of `early_stop.check_epochs`) a trial with validation
accuracy a(e), P parameters, quantization mode q and M MACs is stopped when

    a(e) + G(e) + slack  <  B

where
- B is the best final validation accuracy among the study's completed trials that are no
  larger (size_bytes <= P x bytes_per_param(q), an underestimate of this trial's file) and
  no heavier (macs <= M, the latency proxy known before conversion): such a trial already
  beats this one on size and speed, so this one only matters if it can beat it on accuracy;
- G(e) is the largest gain from epoch e to the final validation accuracy seen in the
  completed trials pruned to the same sparsity (at least `MIN_SAME_SPARSITY` of them; else in
  all completed trials).  Final = measured on the .tflite file, so pruning and quantization
  losses are in it: the most this trial could plausibly still gain.  Conditioning on the
  sparsity lets the rule see, from the first epochs, a trial that its pruning will ruin.

Nothing is stopped until `min_completed` trials have completed.  A stopped trial is
PRUNED in Optuna and KILLED with tag optuna_state=PRUNED in MLflow, with the epochs it trained
and its time by phase (only training ran) logged there like a finished trial's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import optuna

from compress.core.compat import keras
from compress.core.options import QUANT

log = logging.getLogger(__name__)
CURVE_ATTR = "val_curve"  # per-epoch validation accuracy of the distillation phase
MIN_SAME_SPARSITY = 2


class StoppedEarly(optuna.TrialPruned):
    """The rule stopped the trial; `epochs` holds the Keras logs of the epochs it trained."""

    def __init__(self, reason: str, epochs: tuple[dict, ...] = ()):
        super().__init__(reason)  # args stay (reason,): the exception pickles across worker processes
        self.epochs = epochs


@dataclass(frozen=True)
class Reference:
    """What a completed trial contributes to the rule."""

    val_accuracy: float
    size_bytes: float
    macs: float
    curve: tuple[float, ...]
    sparsity: float | None = None  # the trial's prune.sparsity when the study searched it


def hopeless(accuracy: float, epoch: int, params: int, mode: str, macs: int, references: list[Reference],
             slack: float, min_completed: int, sparsity: float | None = None) -> str | None:
    """The reason to stop (a sentence) or None; `epoch` counts from 1."""
    usable = [r for r in references if len(r.curve) >= epoch]
    if len(usable) < min_completed:
        return None
    same = [r for r in usable if sparsity is not None and r.sparsity is not None and abs(r.sparsity - sparsity) < 1e-9]
    gain_from = same if len(same) >= MIN_SAME_SPARSITY else usable
    size_bound = params * QUANT[mode].bytes_per_param
    rivals = [r for r in references if r.size_bytes <= size_bound and r.macs <= macs]
    if not rivals:
        return None
    best = max(r.val_accuracy for r in rivals)
    gain = max(r.val_accuracy - r.curve[epoch - 1] for r in gain_from)
    seen = f"at sparsity {sparsity:g}" if gain_from is same else "in any trial"
    if accuracy + gain + slack < best:
        return (f"epoch {epoch}: val {accuracy:.4f} + best gain seen {seen} {gain:+.4f} + slack {slack:.4f} < {best:.4f}, "
                f"reached by a completed trial of <= {size_bound:,.0f} bytes and <= {macs:,} MACs")
    return None


def references_from_study(study_name: str, storage_url: str) -> list[Reference]:
    """Completed trials of the study with the attributes the rule needs."""
    from hydra_plugins.compress_optuna_sweeper.storage import make_storage

    study = optuna.load_study(study_name=study_name, storage=make_storage(storage_url))
    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        a = t.user_attrs
        if all(k in a for k in ("val_accuracy", "size_bytes", "macs", CURVE_ATTR)):
            sparsity = t.params.get("prune.sparsity")
            out.append(Reference(float(a["val_accuracy"]), float(a["size_bytes"]), float(a["macs"]),
                                 tuple(float(v) for v in a[CURVE_ATTR]),
                                 None if sparsity is None else float(sparsity)))
    return out


@dataclass(frozen=True)
class StopRule:
    """The rule's settings for one trial of a stored study: `early_stop`'s, the study's, the trial's own."""

    check_epochs: tuple[int, ...]
    slack: float
    min_completed: int
    study_name: str
    storage: str
    mode: str  # the trial's quantization mode: its bytes per parameter bound its file
    sparsity: float | None

    @classmethod
    def of(cls, cfg) -> StopRule | None:
        """The rule for a trial of `cfg`; None when it is off or the trial belongs to no stored study."""
        if not cfg.early_stop.enabled or not cfg.study.study_name or not cfg.study.storage:
            return None
        e = cfg.early_stop
        return cls(tuple(int(k) for k in e.check_epochs), float(e.slack), int(e.min_completed),
                   str(cfg.study.study_name), str(cfg.study.storage), str(cfg.quant.mode),
                   float(cfg.prune.sparsity) if "prune" in cfg else None)

    def callbacks(self, model: keras.Model, macs: int) -> list:
        """The early-stop callback for `model`, whose MACs are `macs`."""
        return [EarlyStopCheck(self, int(model.count_params()), int(macs))]


class EarlyStopCheck(keras.callbacks.Callback):
    """Applies `hopeless` at the rule's epochs of the distillation phase."""

    def __init__(self, rule: StopRule, params: int, macs: int):
        super().__init__()
        # not `self.params`: Keras sets that attribute on every callback (a dict of fit's settings)
        self.rule, self.n_params, self.macs = rule, params, macs
        self.references: list[Reference] | None = None
        self.epochs: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({k: float(v) for k, v in (logs or {}).items()})
        e, rule = epoch + 1, self.rule
        if e not in set(rule.check_epochs) or "val_accuracy" not in (logs or {}):
            return
        if self.references is None:
            self.references = references_from_study(rule.study_name, rule.storage)
        reason = hopeless(float(logs["val_accuracy"]), e, self.n_params, rule.mode, self.macs, self.references,
                          rule.slack, rule.min_completed, rule.sparsity)
        if reason:
            log.info("stopping early: %s", reason)
            raise StoppedEarly(reason, tuple(self.epochs))

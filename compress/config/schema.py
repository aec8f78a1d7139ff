"""Typed schemas for every config group: the YAML files under conf/ fill these, and a wrong key or type
fails when Hydra composes the config. Range checks live in `compress.config.validate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from compress.config.resolvers import register_resolvers


@dataclass
class DataConfig:
    source: str = "fashion_mnist"  # fashion_mnist, npz or image_folder (conf/data/: one option each)
    flip: bool = True  # a horizontally flipped image is the same class: augmentation may flip (false: digits, text)
    dir: Optional[str] = None  # fashion_mnist: folder with the four IDX files; None searches the usual places
    path: Optional[str] = None  # npz: the .npz file; image_folder: the folder holding train/ and test/
    val_size: int = 5000  # validation images carved from the training set, stratified
    val_share: Optional[float] = None  # instead of val_size: this share of the training set (npz, image_folder)
    split_seed: int = 0
    fraction: float = 1.0  # share of every split used (smoke runs use a slice; a stratified sample but for
    # fashion_mnist, whose shuffled files keep their head slice)
    verify_checksums: bool = True
    channels: Optional[int] = None  # image_folder: 1 or 3 to force; None reads the colour from the files
    image_size: Optional[List[int]] = None  # image_folder: [H, W] every image is resized to; None: all alike


@dataclass
class TeacherTrainConfig:
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    augment: bool = True  # random horizontal flip and +-2 pixel shifts
    seed: int = 0


@dataclass
class TeacherConfig:
    path: Optional[str] = "models/teacher/teacher.keras"  # a trained Keras file; trained and cached if missing
    train: TeacherTrainConfig = field(default_factory=TeacherTrainConfig)


@dataclass
class EnsembleConfig:
    """A stronger teacher for distillation (conf/ensemble/, compress/teacher/ensemble.py)."""

    name: str = "resnet48x3"
    arch: str = "resnet"  # resnet or user (the user's network at `width`)
    width: int = 48
    members: int = 3
    epochs: int = 30
    batch_size: int = 256
    optimizer: str = "sgd"  # sgd (Nesterov momentum) or adamw
    learning_rate: float = 0.1
    weight_decay: float = 5e-4
    flip: bool = True
    max_shift: int = 2
    erase: float = 0.5  # the share of images given one random-erasing rectangle
    seed: int = 0
    path: str = "models/ensemble/resnet48x3/ensemble.keras"
    members_from: Optional[str] = None  # members' weights trained elsewhere, taken when their recipe matches


@dataclass
class StudentConfig:
    arch: str = "cnn"  # cnn (the teacher's blocks, scaled), dsconv (depthwise-separable blocks), dsconv_s2, dsconv_sp
    width: float = 0.25  # multiplies the teacher's 64/128/256 channels and 256 dense units
    kernel_size: int = 3
    activation: str = "relu"
    head: str = "flatten"  # flatten (like the teacher) or gap (global average pooling)
    dropout: float = 0.1
    min_channels: int = 4
    bn_momentum: float = 0.99  # BatchNorm moving-average momentum; lower it for runs of a few hundred steps
    # dsconv families: each conv's channels rounded to the nearest multiple of this (a tie rounds down);
    # 1 keeps the width's own counts. The cnn family ignores it (compress/training/students.py)
    channel_multiple: int = 8


@dataclass
class DistillConfig:
    temperature: float = 4.0
    alpha: float = 0.1  # weight of the hard-label cross-entropy; 1 - alpha weighs the soft KL term
    epochs: int = 4
    batch_size: int = 128
    learning_rate: float = 3e-3
    teacher_logits: str = "cached"  # cached (on disk, computed once) or online (teacher on every batch)
    teacher: str = "user"  # who teaches: user (the `teacher` group's model) or ensemble (the `ensemble` group's)
    steps_per_execution: int = 8  # batches per graph call while distilling (see distill.compile_for_distillation)
    augment: str = "flip_shift"  # none, or flip_shift: each epoch shows every image in one of `views` cached views
    views: int = 8  # augmented views per image whose teacher logits are cached (view 0 is the image itself)
    max_shift: int = 2  # pixels a view may be shifted by, each way
    view_seed: int = 0  # the views are a pure function of (view_seed, view, image)


@dataclass
class PruneConfig:
    method: str = "magnitude"  # magnitude (zeros in place) or channel (whole channels removed): compress/training/prune/
    sparsity: float = 0.0  # magnitude: share of zero weights per kernel; channel: share of channels removed per layer
    importance: str = "bn"  # channel: rank channels by BatchNorm |gamma| (bn) or filter L1 norm (l1)
    epochs: int = 1  # fine-tuning epochs while the sparsity ramps up
    learning_rate: float = 1e-3


@dataclass
class QuantConfig:
    mode: str = "int8"  # float32, float16, dynamic, int8, qat
    qat_epochs: int = 1
    learning_rate: float = 5e-4
    representative_samples: int = 500


@dataclass
class EarlyStopConfig:
    enabled: bool = True  # as conf/early_stop/front.yaml, the default group
    check_epochs: List[int] = field(default_factory=lambda: [1, 2])
    slack: float = 0.005
    min_completed: int = 6


@dataclass
class CoremlConfig:
    enabled: bool = True
    compression: str = "palettize6"  # none, linear8, palettize8, palettize6, palettize4, palettize2, sparse


@dataclass
class MeasureConfig:
    latency_runs: int = 200  # timed single-image invokes per model (median reported)
    warmup: int = 20
    threads: int = 1
    eval_batch: int = 500


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_root: str = "mlruns/artifacts"
    experiment: str = MISSING  # conf/tracking/: per study (compress/config/paths.py)
    registered_model: str = MISSING  # the Model Registry name of the study's finalized winner


@dataclass
class PathsConfig:
    """Where a study's stores and outputs live (conf/paths/default.yaml, compress/config/paths.py)."""

    default_study: str = MISSING
    study: str = MISSING
    sweeps_dir: str = "sweeps"
    cache_dir: str = ".cache"
    report_dir: str = MISSING
    winner_dir: str = MISSING
    report_md: str = MISSING
    analysis_dir: str = MISSING


@dataclass
class TargetsConfig:
    """The app's budgets and what each aims at (conf/targets/): one definition that finalize, the study
    run, the report, the summary and the sweeper's console read (tests/test_config.py: as the YAML)."""

    size_classes: List[int] = field(default_factory=lambda: [16384, 65536])  # bytes of the shipped file
    accuracy: List[float] = field(default_factory=lambda: [0.91, 0.93])  # test accuracy per size class (seed means)
    max_bytes: int = 65536  # the app's budget: the winner ships at most this
    max_latency_ratio: Optional[float] = 0.05  # at most this fraction of the teacher's latency (20x faster)
    # ...or this, measured on a CPU whose best int8 instruction set is the key (compress/measure/machine.py)
    latency_ratio_by_isa: Dict[str, float] = field(default_factory=lambda: {"avx2": 0.10, "sse4": 0.10})


@dataclass
class FinalizeConfig:
    """The finalists stage (compress/finalize/stage.py): which trials, the final recipe, the winner."""

    max_finalists: int = 6
    jobs: int = 1  # finalists trained side by side, each process with cores/jobs threads
    size_classes: List[int] = "${targets.size_classes}"  # the app's (conf/targets/), as every budget below
    trials: List[int] = field(default_factory=list)  # by hand instead of the default selection
    out_dir: Optional[str] = None  # finalists' table and summary; None: report/ (default study), sweeps/<study>/
    export_dir: Optional[str] = None  # the winner's files; None: winner/ (default study), sweeps/<study>/winner/
    trials_table: Optional[str] = None  # candidates when MLflow has none; None: <out_dir>/trials.csv
    work_dir: Optional[str] = None  # every finalist's working files; None: sweeps/<study>/finalists/
    epochs: int = 60
    small_class_epochs: int = 60  # recipes whose int8 file fits the smallest size class: cheap and capacity-bound
    learning_rate: float = 3e-3
    augment: str = "none"  # measured: the plain images beat the augmented views for these students
    temperature: Optional[float] = None  # the distillation temperature of every finalist; None: its trial's
    alpha: Optional[float] = None  # the weight of the labels against the teacher; None: its trial's
    width: Optional[float] = None  # the student width of every finalist (with finalize.trials); None: its trial's
    teacher: Optional[str] = "ensemble"  # who teaches the finalists: ensemble or user; None: as distill.teacher
    fill_size_classes: List[int] = field(default_factory=list)  # widened to fill (conf/finalize: the smallest class)
    fill_share: float = 0.95  # ... up to this share of the class, by the int8 estimate (finalize/fill.py)
    qat_epochs: int = 2
    prune_epochs: int = 5  # pruned recipes ramp their sparsity over this many epochs (the search: prune.epochs)
    min_search_accuracy: float = 0.7  # the default selection ignores trials below this search validation accuracy
    int8_tolerance: float = 0.002  # post-training int8 may lose this much validation accuracy before QAT is tried
    encoding_tolerance: float = 0.002  # ship the smallest int8 encoding within this of the best one's accuracy
    coreml_compression: str = "linear8"
    policy: str = "max_bytes"  # max_bytes or smallest_within (compress/finalize/winner_policy.py)
    max_bytes: int = "${targets.max_bytes}"
    budget: float = 0.005
    max_latency_ratio: Optional[float] = "${targets.max_latency_ratio}"  # either policy: of the teacher's latency
    latency_ratio_by_isa: Dict[str, float] = "${targets.latency_ratio_by_isa}"  # per ISA (measure/machine.py)
    latency_preflight: Optional[float] = 1.1  # skip, untrained, a finalist whose int8 file runs over this x the budget
    winner_seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    class_seeds: bool = True  # each size class's leading finalist gets the winner's seeds too (finalize/classes.py)
    export: bool = True  # false: train the finalists only (a side measurement), leave the winner and summary alone


@dataclass
class StudyInfo:
    """Filled by the sweeper for each job: which study and trial it is."""

    study_name: Optional[str] = None
    trial_number: Optional[int] = None
    storage: Optional[str] = None


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    coreml: CoremlConfig = field(default_factory=CoremlConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    finalize: FinalizeConfig = field(default_factory=FinalizeConfig)
    targets: TargetsConfig = field(default_factory=TargetsConfig)
    study: StudyInfo = field(default_factory=StudyInfo)
    seed: int = 0
    verbose: int = 0


def register() -> None:
    """Put the schemas in Hydra's ConfigStore (idempotent)."""
    import hydra_plugins.compress_optuna_sweeper.config  # noqa: F401 - the ${optuna:...} resolver

    register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)

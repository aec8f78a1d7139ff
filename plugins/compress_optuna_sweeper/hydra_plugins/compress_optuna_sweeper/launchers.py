"""Hydra's launchers as the study's hands: which launcher runs the jobs, how many trials run at once
through it, what a remote launcher needs, and how many threads a job may use.

With Hydra's basic launcher a job runs in the sweeper's own process, so `n_jobs` > 1 starts worker
processes on one shared storage (`workers`). Any other launcher (joblib, submitit, Ray) runs jobs in
processes of its own: then `n_jobs` sweeper threads each ask for a trial and launch it alone. One
launch call per trial, rather than batches, because `launch` returns only when its whole batch has
ended and the submitit and Ray launchers raise on the first job that dies, losing the others'
results: alone, a killed job fails only its own trial, and each result is told as it comes.
`hydra.sweeper.n_jobs` is how many trials run at once; a launcher's own `n_jobs` (joblib) only
bounds the processes of each one-job launch."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Optional

log = logging.getLogger(__name__)
# launcher class -> the name users give hydra/launcher=
KNOWN = {"JoblibLauncher": "joblib", "LocalLauncher": "submitit_local", "SlurmLauncher": "submitit_slurm",
         "RayLauncher": "ray", "RayAWSLauncher": "ray_aws"}


def kind(launcher: Any) -> str:
    return type(launcher).__name__


def name_of(launcher: Any) -> str:
    return KNOWN.get(kind(launcher), kind(launcher))


def ray_address(launcher: Any) -> Optional[str]:
    """The Ray cluster a Ray launcher joins (`hydra.launcher.ray.init.address`); None: one it starts here."""
    if kind(launcher) != "RayLauncher":
        return None
    address = (launcher.ray_cfg.get("init") or {}).get("address")
    return str(address) if address else None


def is_basic(launcher: Any) -> bool:
    return kind(launcher) == "BasicLauncher"


def is_remote(launcher: Any) -> bool:
    """Jobs that may run on other machines: SLURM, Ray on AWS, or a Ray cluster at a given address."""
    name = kind(launcher)
    if name in ("SlurmLauncher", "RayAWSLauncher"):
        return True
    address = ray_address(launcher)
    return bool(address) and not address.startswith(("127.0.0.1", "localhost", "local"))


def check(launcher: Any, storage_url: Optional[str]) -> None:
    """Before any store is written: a Ray cluster that does not answer, or a remote launcher with stores
    that are files on this machine (its jobs open the stores themselves), is one line and exit 2."""
    address = ray_address(launcher)
    if address and not _reachable(address):
        print(f"error: hydra.launcher.ray.init.address={address}: no Ray cluster answers there; start one with "
              "`ray start --head` (docs/scaling-out.md) or give its address (host:port)", file=sys.stderr)
        raise SystemExit(2)
    if not is_remote(launcher):
        return
    if not storage_url or storage_url.startswith(("sqlite", "journal")):
        print(f"error: hydra/launcher={name_of(launcher)} runs jobs on other machines, "
              f"which cannot open hydra.sweeper.storage={storage_url}: use a PostgreSQL study "
              "(postgresql+psycopg://...) and an MLflow server (tracking.uri=http://...), docs/scaling-out.md",
              file=sys.stderr)
        raise SystemExit(2)


def job_cpus(launcher: Any, n_jobs: int) -> Optional[int]:
    """The CPUs one job may use: the launcher's own setting where it has one, else an equal share of
    this machine for launchers whose jobs run here; None where the job's machine decides."""
    name = kind(launcher)
    if name in ("LocalLauncher", "SlurmLauncher") and launcher.params.get("cpus_per_task"):
        return int(launcher.params["cpus_per_task"])
    if name == "RayLauncher" and (launcher.ray_cfg.get("remote") or {}).get("num_cpus"):
        return int(launcher.ray_cfg["remote"]["num_cpus"])
    if is_remote(launcher):
        return None
    return max(1, (os.cpu_count() or 1) // n_jobs)


def prepare(launcher: Any, n_jobs: int) -> None:
    """Before the first launch: the jobs' thread count in the environment they inherit, and Ray started
    once (its launcher starts it on first use, which threads launching at once would race)."""
    cpus = job_cpus(launcher, n_jobs)
    if cpus:  # jobs started from this process inherit it; a Ray cluster's workers are given it
        os.environ.setdefault("COMPRESS_THREADS", str(cpus))
        if kind(launcher) == "RayLauncher":
            from omegaconf import OmegaConf, open_dict

            key = "remote.runtime_env.env_vars.COMPRESS_THREADS"
            with open_dict(launcher.ray_cfg):
                if OmegaConf.select(launcher.ray_cfg, key) is None:
                    OmegaConf.update(launcher.ray_cfg, key, os.environ["COMPRESS_THREADS"], force_add=True)
    log.info("launcher %s: %d trial(s) at once, one launch per trial%s", name_of(launcher), n_jobs,
             f", {cpus} thread(s) a job" if cpus else "")
    if kind(launcher) == "RayLauncher":
        _start_ray(launcher)


def _start_ray(launcher: Any) -> None:
    import ray
    from hydra_plugins.hydra_ray_launcher._launcher_util import start_ray
    from omegaconf import open_dict

    address = ray_address(launcher)
    if not address:  # a cluster started here: as small an object store as the launcher itself asks for
        with open_dict(launcher.ray_cfg):
            launcher.ray_cfg.init.setdefault("object_store_memory", 78643200)
    try:
        start_ray(launcher.ray_cfg.init)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        print(f"error: hydra.launcher.ray.init.address={address}: cannot reach the Ray cluster "
              f"({str(exc).splitlines()[0][:160]}); start one with `ray start --head` or give its address",
              file=sys.stderr)
        raise SystemExit(2) from None
    assert ray.is_initialized()


def _reachable(address: str, timeout: float = 3.0) -> bool:
    """A TCP connection to a `host:port` (or `ray://host:port`) address; `auto` is left to Ray."""
    import socket

    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        return True
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def run_slots(n: int, loop: Any, stop: Any) -> None:
    """Run `loop` in `n` threads until each returns; the first error stops the others' next asks and is
    raised here. Joined in steps, so that Ctrl-C reaches the main thread at once."""
    import threading

    errors: list = []

    def run() -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=run, name=f"trial-slot-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.5)
    if errors:
        raise errors[0]


def stop_jobs(launcher: Any) -> None:
    """Ctrl-C: stop the jobs this process started (launcher job processes are its descendants; a Ray
    cluster started here is shut down, which ends its tasks; SLURM jobs are cancelled by submitit's
    own handler in the job, so only what runs here is signalled)."""
    import signal
    import time

    if kind(launcher).startswith("Ray"):
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except Exception as exc:  # noqa: BLE001 - stopping is best effort, the trials are already marked
            log.warning("ray.shutdown failed: %s", exc)
    children = descendants(os.getpid())
    for sig in (signal.SIGINT, signal.SIGKILL):
        for pid in children:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 3
        while sig == signal.SIGINT and time.time() < deadline and any(_alive(p) for p in children):
            time.sleep(0.1)


def descendants(pid: int) -> list:
    """Process ids under `pid` (Linux /proc; empty elsewhere)."""
    parents = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False

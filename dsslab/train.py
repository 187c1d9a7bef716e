"""python -m dsslab.train: one training job per Hydra run, or one per sweep point with -m."""

import logging
import os
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dsslab.config import ConfigError, validate
from dsslab.data import DataError
from dsslab.experiment import Experiment
from dsslab.selection import STRATEGIES
from dsslab.tracking import now_iso, write_json_atomically

log = logging.getLogger(__name__)
USER_ERRORS = (ConfigError, DataError)  # reported as one line, without a traceback

# The process id goes into output dir names so that runs started in the same instant differ.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the job stops and records why."""

    def __init__(self, signum: int):
        super().__init__(f"received signal {signum}")
        self.signum = signum


def raise_terminated(signum, frame):
    raise Terminated(signum)


def job_identity(cfg: DictConfig) -> dict:
    """Who this run is, for run.json and W&B: strategy, fraction, name from overrides, group."""
    name, group = "run", cfg.wandb.group
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        name = hydra_cfg.job.override_dirname or hydra_cfg.job.name
        if hydra_cfg.mode.name == "MULTIRUN" and group is None:
            group = Path(hydra_cfg.sweep.dir).name
    # Strategies that train on all data (full) report fraction 1.0 whatever `fraction` says.
    strategy = STRATEGIES.get(cfg.strategy.name)
    uses_budget = strategy is None or strategy.uses_budget
    return {"strategy": cfg.strategy.name, "fraction": cfg.fraction if uses_budget else 1.0,
            "seed": cfg.seed, "epochs": cfg.epochs, "dataset": cfg.dataset.name,
            "model": cfg.model.name, "job_name": name, "group": group}


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Validate, build and run one job in `run_dir`; returns its summary.

    Any failure is logged (with its traceback unless it is a config or data error, or a stop)
    and recorded in run.json and W&B before it propagates, so that a sweep reports it and moves
    on.
    """
    identity = job_identity(cfg)
    try:
        validate(cfg)
        experiment = Experiment(cfg, Path(run_dir), identity)
    except BaseException as error:
        record_failed_start(Path(run_dir), identity, error)
        raise
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return experiment.run()
    except KeyboardInterrupt as error:
        log.error("stopped during epoch %d (%s); continue with resume=%s",
                  experiment.state["epoch"] + 1, error or "Ctrl-C", experiment.run_dir)
        experiment.tracker.fail(error)
        raise
    except BaseException as error:
        log.exception("job failed at epoch %d", experiment.state["epoch"] + 1)
        experiment.tracker.fail(error)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def record_failed_start(run_dir: Path, identity: dict, error: BaseException) -> None:
    """A job that could not start still says so, in its log and in run.json."""
    if in_sweep():
        if isinstance(error, USER_ERRORS):
            log.error("job could not start: %s", error)
        else:
            log.exception("job could not start")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(run_dir / "run.json", {
        **identity, "status": "failed", "error": f"{type(error).__name__}: {error}",
        "started_at": now_iso(), "ended_at": now_iso()})


def in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"


@hydra.main(version_base="1.3", config_path="pkg://dsslab.conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns best val/acc, the objective for sweepers such as Optuna.

    A single run with a bad config or missing data ends with the one-line reason, and a stopped
    one with the line that says how to resume; in a sweep the error propagates so that Hydra
    records the job as failed and runs the others.
    """
    try:
        summary = train(cfg, HydraConfig.get().runtime.output_dir)
    except USER_ERRORS as error:
        if in_sweep():
            raise
        sys.exit(f"dsslab: {error}")
    except KeyboardInterrupt as error:
        if in_sweep():
            raise
        sys.exit(128 + getattr(error, "signum", signal.SIGINT))
    return summary["val/acc_best"]


if __name__ == "__main__":
    main()

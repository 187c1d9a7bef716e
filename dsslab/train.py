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
from dsslab.data import DataNotFoundError
from dsslab.experiment import Experiment

log = logging.getLogger(__name__)

# The process id goes into output dir names so that runs started in the same instant differ.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the job stops and records why."""


def raise_terminated(signum, frame):
    raise Terminated(f"received signal {signum}")


def job_identity(cfg: DictConfig) -> dict:
    """Who this run is, for run.json and W&B: strategy, fraction, name from overrides, group."""
    name, group = "run", cfg.wandb.group
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        name = hydra_cfg.job.override_dirname or hydra_cfg.job.name
        if hydra_cfg.mode.name == "MULTIRUN" and group is None:
            group = Path(hydra_cfg.sweep.dir).name
    uses_budget = cfg.strategy.name != "full"
    return {"strategy": cfg.strategy.name, "fraction": cfg.fraction if uses_budget else 1.0,
            "seed": cfg.seed, "epochs": cfg.epochs, "dataset": cfg.dataset.name,
            "model": cfg.model.name, "job_name": name, "group": group}


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Validate, build and run one job in `run_dir`; returns its summary.

    Any failure is logged with its traceback (into the job's log file) and recorded in run.json
    and W&B before it propagates, so that a sweep reports it and moves on.
    """
    validate(cfg)
    experiment = Experiment(cfg, Path(run_dir), job_identity(cfg))
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return experiment.run()
    except BaseException as error:
        log.exception("job failed at epoch %d", experiment.state["epoch"] + 1)
        experiment.tracker.fail(error)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


@hydra.main(version_base="1.3", config_path="pkg://dsslab.conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns best val/acc, the objective for sweepers such as Optuna.

    A single run with a bad config ends with the one-line reason; in a sweep the error
    propagates so that Hydra records the job as failed and runs the others.
    """
    hydra_cfg = HydraConfig.get()
    try:
        summary = train(cfg, hydra_cfg.runtime.output_dir)
    except (ConfigError, DataNotFoundError) as error:
        if hydra_cfg.mode.name == "MULTIRUN":
            raise
        sys.exit(f"dsslab: {error}")
    return summary["val/acc_best"]


if __name__ == "__main__":
    main()

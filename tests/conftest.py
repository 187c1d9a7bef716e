"""Shared test fixtures: single-threaded torch, composed configs and CLI runs in a tmp dir."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

# Small ops on a busy 2-core machine run far faster on one intra-op thread.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["WANDB_SILENT"] = "true"

REPO = Path(__file__).resolve().parents[1]
FAST = ["epochs=1", "wandb.mode=disabled", "hardware=cpu", "hardware.threads=1"]


@pytest.fixture
def make_config():
    """Compose the real config with overrides, as `python -m dsslab.train` would."""

    def compose_with(*overrides: str):
        with initialize_config_module("dsslab.conf", version_base="1.3"):
            return compose("train", overrides=list(overrides))

    return compose_with


def run_cli(*args: str, cwd: Path, module: str = "dsslab.train", timeout: int = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a dsslab command in a subprocess, capturing output; never raises on failure."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli(tmp_path):
    """run_cli bound to a fresh working directory."""

    def run(*args, **kwargs):
        return run_cli(*args, cwd=tmp_path, **kwargs)

    return run

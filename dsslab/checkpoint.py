"""Checkpoints written atomically every epoch, and the checks that make a resume exact."""

import os
import random
from pathlib import Path

import numpy as np
import torch

from dsslab.config import ConfigError

CHECKPOINT_NAME = "checkpoint.pt"
# A resumed run must train the same problem: these keys must match the checkpoint's.
RESUME_KEYS = ("fraction", "strategy", "dataset", "model", "seed", "batch_size", "epochs",
               "optimizer", "scheduler", "scheduler_interval")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` plus every RNG state to a temporary file, then rename it into place."""
    state = {**state, "rng": {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }}
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_checkpoint(location: str) -> tuple[dict, Path]:
    """The checkpoint in a run dir (or at a file path), with the RNG states restored."""
    path = Path(location).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise ConfigError(f"resume={location!r}: no checkpoint at {path}; pass a run dir "
                                f"that holds {CHECKPOINT_NAME} or the checkpoint file itself")
    state = torch.load(path, map_location="cpu", weights_only=False)
    restore_rng(state["rng"])
    return state, path


def restore_rng(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])


def check_resume_matches(saved_config: dict, config: dict) -> None:
    """Refuse to resume into a different experiment, naming the first key that differs."""
    for key in RESUME_KEYS:
        difference = first_difference(saved_config.get(key), config.get(key), key)
        if difference:
            dotted, before, now = difference
            raise ConfigError(
                f"cannot resume: {dotted} differs from the checkpoint ({before!r} there, "
                f"{now!r} now); resume with the original settings or start a new run")


def first_difference(before, now, path: str):
    """(dotted key, old value, new value) of the first leaf that differs, or None."""
    if isinstance(before, dict) and isinstance(now, dict):
        # A different `name` (another strategy, model or dataset) is the difference to report.
        for key in sorted(set(before) | set(now), key=lambda key: (key != "name", key)):
            found = first_difference(before.get(key), now.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    return None if before == now else (path, before, now)


def check_not_finished(state: dict, epochs: int, location: str) -> None:
    """A checkpoint of the last epoch has nothing left to train."""
    if state["progress"]["epoch"] >= epochs:
        raise ConfigError(f"resume={location!r}: that run already finished all {epochs} epochs; "
                          "nothing to resume")

"""Find the job directories under a path and read the files each job writes."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"


class ReportError(Exception):
    """A path or file the report cannot use; the message names it."""


@dataclass(frozen=True, eq=False)
class Run:
    """One job: its run.json, its per-epoch metrics and, after success, its summary."""

    path: Path  # the job directory
    name: str  # the job directory relative to the path the report was asked for
    info: dict  # run.json
    metrics: list[dict]  # metrics.jsonl, one dict per completed epoch
    summary: dict | None  # summary.json, None unless the job finished
    overrides: tuple[str, ...]  # .hydra/overrides.yaml, the job's command-line overrides

    @property
    def status(self) -> str:
        """completed, failed or running (a killed job stays running)."""
        return str(self.info.get("status", "unknown"))


def load_runs(root: str | Path) -> list[Run]:
    """Read every job directory (a directory holding run.json) under `root`, recursively.

    Raises ReportError naming `root` when it does not exist, is not a directory or holds no run.
    """
    root = Path(root)
    if not root.exists():
        raise ReportError(f"path '{root}' does not exist")
    if not root.is_dir():
        raise ReportError(f"path '{root}' is not a directory (expected a sweep or outputs dir)")

    runs = [run for directory in find_run_dirs(root) if (run := read_run(directory, root))]
    if not runs:
        raise ReportError(
            f"no runs found under '{root}': expected directories containing {RUN_FILE}"
        )
    logger.info("read %d runs under %s", len(runs), root)
    return runs


def find_run_dirs(root: Path) -> list[Path]:
    """Job directories under `root` in natural order (job 2 before job 10).

    W&B and hidden folders are skipped: they never hold a job's own run.json.
    """
    found = []
    for run_file in root.rglob(RUN_FILE):
        parts = run_file.relative_to(root).parts[:-1]
        if any(part == "wandb" or part.startswith(".") for part in parts):
            continue
        found.append(run_file.parent)
    return sorted(found, key=lambda path: natural_key(path.relative_to(root).as_posix()))


def natural_key(text: str) -> list:
    """Sort key that orders the digit runs in `text` by value."""
    return [(0, int(piece), "") if piece.isdigit() else (1, 0, piece)
            for piece in re.split(r"(\d+)", text) if piece]


def read_run(directory: Path, root: Path) -> Run | None:
    """Read one job directory; None (with a warning) when its run.json is unreadable."""
    try:
        info = json.loads((directory / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        logger.warning("skipping %s: cannot read %s (%s)", directory, RUN_FILE, error)
        return None
    if not isinstance(info, dict):
        logger.warning("skipping %s: %s is not a JSON object", directory, RUN_FILE)
        return None

    name = directory.relative_to(root).as_posix()
    return Run(
        path=directory,
        name=name,
        info=info,
        metrics=read_metrics(directory / METRICS_FILE),
        summary=read_summary(directory / SUMMARY_FILE),
        overrides=read_overrides(directory / OVERRIDES_FILE),
    )


def read_metrics(path: Path) -> list[dict]:
    """One dict per line of metrics.jsonl; a torn line (a killed job) is skipped with a warning."""
    if not path.exists():
        return []
    epochs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            epochs.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("%s line %d is not JSON; skipped", path, number)
    return epochs


def read_summary(path: Path) -> dict | None:
    """summary.json, or None when the job did not finish (or the file is unreadable)."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        logger.warning("ignoring %s: not JSON (%s)", path, error)
        return None


def read_overrides(path: Path) -> tuple[str, ...]:
    """The job's command-line overrides as Hydra recorded them; empty when absent."""
    if not path.exists():
        return ()
    overrides = yaml.safe_load(path.read_text()) or []
    return tuple(str(override) for override in overrides)

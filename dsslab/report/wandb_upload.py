"""Upload the report table and charts to W&B, into the sweep's group."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from dsslab.report.runs import Run
from dsslab.report.table import COLUMNS

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "dsslab"
WANDB_MODES = ("online", "offline", "disabled")


def upload_report(
    records: list[dict],
    charts: dict[str, Path],
    out_dir: Path,
    mode: str = "offline",
    project: str | None = None,
    entity: str | None = None,
    group: str | None = None,
) -> Path | None:
    """Log the table as a wandb.Table and each chart as a wandb.Image in one 'report' run.

    Returns the run's local files directory (None when mode is disabled).
    """
    import wandb  # heavy and optional: only the --wandb path needs it

    run = wandb.init(
        project=project or DEFAULT_PROJECT, entity=entity, group=group, job_type="report",
        name=f"report-{group}" if group else "report", dir=str(out_dir), mode=mode,
    )
    try:
        table = wandb.Table(
            columns=list(COLUMNS),
            data=[[wandb_cell(row[column]) for column in COLUMNS] for row in records],
        )
        images = {f"report/{name}": wandb.Image(str(path)) for name, path in charts.items()}
        run.log({"report/table": table, **images})
        files_dir = None if mode == "disabled" else Path(run.dir)
    finally:
        run.finish()
    logger.info("logged the report to W&B (mode %s, group %s)", mode, group)
    return files_dir


def wandb_cell(value):
    """W&B table cells: lists become comma-joined text."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return value


def common_group(runs: list[Run]) -> str | None:
    """The group (sweep id) the runs share, None when they have none or several."""
    groups = {run.info.get("group") for run in runs} - {None}
    if len(groups) > 1:
        logger.warning("runs come from %d groups; the report run gets none", len(groups))
    return groups.pop() if len(groups) == 1 else None


def tracking_target(runs: list[Run]) -> tuple[str | None, str | None]:
    """W&B project and entity from the first job's resolved config (wandb.project/entity)."""
    config_path = runs[0].path / ".hydra" / "config.yaml"
    if not config_path.exists():
        return None, None
    settings = (yaml.safe_load(config_path.read_text()) or {}).get("wandb") or {}
    return settings.get("project"), settings.get("entity")

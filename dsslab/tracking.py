"""Where a job's results go: plain files in its output dir, and a W&B run beside them.

- run.json: who the run is and its status (running, completed, failed), rewritten at the end;
- metrics.jsonl: one line per finished epoch, flushed as it is written;
- summary.json: the final figures, written last and only when the run succeeded;
- wandb/: the W&B run (offline by default: no account, no network; `wandb sync` uploads it).
"""

import datetime
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def write_json_atomically(path: Path, record: dict) -> None:
    """Write to a temporary file and rename, so a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Tracker:
    """One job's metrics, mirrored to files and to W&B behind one small interface."""

    def __init__(self, run_dir: Path, identity: dict, wandb_settings, config: dict,
                 resumed: bool = False):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A resumed run continues the W&B run it started as.
        previous_id = self._previous_record().get("wandb_id") if resumed else None
        self.wandb_run = start_wandb(self.run_dir, identity, wandb_settings, config, previous_id)
        self.record = {**identity, "status": "running", "error": None,
                       "started_at": now_iso(), "ended_at": None,
                       "wandb_id": getattr(self.wandb_run, "id", None)}
        write_json_atomically(self.run_dir / "run.json", self.record)
        mode = "a" if resumed else "w"
        self.metrics_file = open(self.run_dir / "metrics.jsonl", mode, encoding="utf-8")

    def _previous_record(self) -> dict:
        path = self.run_dir / "run.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def log_epoch(self, metrics: dict) -> None:
        self.metrics_file.write(json.dumps(metrics, sort_keys=True) + "\n")
        self.metrics_file.flush()
        self.wandb_run.log(metrics, step=metrics["epoch"])

    def read_metrics(self) -> list[dict]:
        """Every epoch logged so far, in order."""
        with open(self.run_dir / "metrics.jsonl", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop lines of epochs after `last_epoch` (written after the checkpoint a resume uses)."""
        kept = [m for m in self.read_metrics() if m["epoch"] <= last_epoch]
        self.metrics_file.close()
        with open(self.run_dir / "metrics.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(m, sort_keys=True) + "\n" for m in kept)
        self.metrics_file = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")

    def complete(self, summary: dict) -> None:
        """Record success: summary.json is the last file written."""
        self.wandb_run.summary.update(summary)
        self._close("completed", None, exit_code=0)
        write_json_atomically(self.run_dir / "summary.json", summary)

    def fail(self, error: BaseException) -> None:
        self._close("failed", f"{type(error).__name__}: {error}", exit_code=1)

    def _close(self, status: str, error: str | None, exit_code: int) -> None:
        self.metrics_file.close()
        self.record.update(status=status, error=error, ended_at=now_iso())
        write_json_atomically(self.run_dir / "run.json", self.record)
        self.wandb_run.finish(exit_code=exit_code)


def start_wandb(run_dir: Path, identity: dict, settings, config: dict, run_id: str | None):
    """A W&B run in the job dir; an online run that cannot start falls back to offline."""
    import wandb

    options = dict(project=settings.project, entity=settings.entity, group=identity["group"],
                   name=identity["job_name"], tags=list(settings.tags), config=config,
                   dir=str(run_dir), reinit="finish_previous", id=run_id,
                   resume="allow" if run_id else None)
    if settings.mode == "online":
        try:
            return wandb.init(mode="online", settings=wandb.Settings(
                init_timeout=settings.init_timeout_s), **options)
        except Exception as error:  # noqa: BLE001 - any failure to reach W&B means offline
            log.warning("W&B online run could not start (%s); logging offline instead", error)
    return wandb.init(mode=settings.mode if settings.mode != "online" else "offline",
                      settings=wandb.Settings(silent=True, console="off",
                                              x_disable_stats=True, x_disable_machine_info=True),
                      **options)

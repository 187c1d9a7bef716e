"""A Hydra callback that ends every sweep with its report: what each run saved and cost."""

import atexit
import logging
from pathlib import Path

from hydra.experimental.callback import Callback

from dsslab.report.render import render, to_markdown
from dsslab.report.runs import ReportError, load_runs
from dsslab.report.table import build_table

log = logging.getLogger(__name__)
SUMMARY_COLUMNS = ("strategy", "fraction", "status", "val/acc_best", "test/acc",
                   "test/acc_change", "time/total_s", "time/selection_total_s",
                   "speedup/measured")


class SweepReport(Callback):
    """After `-m`, print the compact speedup-vs-accuracy table; the full one is report.md.

    Hydra skips on_multirun_end when a job failed (the sweep then exits non-zero), so the
    report is also registered to print at exit, and printed once either way.
    """

    def __init__(self):
        self.sweep_dir = None

    def on_multirun_start(self, config, **kwargs) -> None:
        self.sweep_dir = Path(config.hydra.sweep.dir)
        atexit.register(self.report)

    def on_multirun_end(self, config, **kwargs) -> None:
        self.report()

    def report(self) -> None:
        if self.sweep_dir is None:
            return
        sweep_dir, self.sweep_dir = self.sweep_dir, None
        atexit.unregister(self.report)
        try:
            records = build_table(load_runs(sweep_dir))
        except ReportError as error:
            log.warning("no report for %s: %s", sweep_dir, error)
            return
        (sweep_dir / "report.md").write_text(render(records, "md"))
        print(f"\nSweep {sweep_dir}: full table in {sweep_dir / 'report.md'}, charts with "
              f"`python -m dsslab.report {sweep_dir}`\n"
              f"{to_markdown(records, list(SUMMARY_COLUMNS))}", flush=True)

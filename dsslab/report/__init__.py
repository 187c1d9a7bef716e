"""Tables and charts of finished, failed and running jobs, read from their run directories.

    from dsslab.report import load_runs, build_table, as_dataframe
    records = build_table(load_runs("multirun/2024-01-01/12-00-00"), sort="val/acc_best")
"""

from dsslab.report.cli import main
from dsslab.report.render import render
from dsslab.report.runs import ReportError, Run, load_runs
from dsslab.report.table import COLUMNS, as_dataframe, build_table, sort_table

__all__ = [
    "COLUMNS",
    "ReportError",
    "Run",
    "as_dataframe",
    "build_table",
    "load_runs",
    "main",
    "render",
    "sort_table",
]

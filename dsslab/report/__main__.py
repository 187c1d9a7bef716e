"""Entry point of python -m dsslab.report."""

import sys

from dsslab.report.cli import main

sys.exit(main())

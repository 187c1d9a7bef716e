"""Subset selection strategies, registered by the name used in `strategy=<name>`."""

import importlib

from dsslab.selection.base import Features, SelectionContext, Subset
from dsslab.selection.budget import budget_for
from dsslab.selection.strategy import STRATEGIES, Strategy, StrategySettings, register

# Importing a strategy module registers its strategies.
for _module in ("baselines", "glister", "craig", "gradmatch"):
    try:
        importlib.import_module(f"dsslab.selection.{_module}")
    except ModuleNotFoundError as error:
        if error.name != f"dsslab.selection.{_module}":
            raise

__all__ = ["Features", "STRATEGIES", "SelectionContext", "Strategy", "StrategySettings", "Subset",
           "budget_for", "register"]

"""The strategy interface, its settings and the registry that maps config names to classes."""

import logging
import time
from dataclasses import dataclass

from dsslab.selection.base import Features, SelectionContext, Subset

logger = logging.getLogger(__name__)


@dataclass
class StrategySettings:
    """Knobs every strategy shares; subclasses add their own fields.

    select_every: epochs between selection rounds (adaptive strategies only).
    warm_start_epochs: full-data epochs before the first round.
    """

    name: str = ""
    select_every: int = 20
    warm_start_epochs: int = 0


class Strategy:
    """Decides which training samples, with which weights, the next epochs train on."""

    settings_class = StrategySettings
    adaptive = True  # False: one selection, kept for the whole run
    uses_budget = True  # False: trains on all data, whatever the fraction
    needs_features = False  # True: select() calls context.compute_features()

    def __init__(self, settings: StrategySettings):
        self.settings = settings

    def select(self, context: SelectionContext) -> Subset:
        raise NotImplementedError


class GradientStrategy(Strategy):
    """A strategy that scores the current model's last-layer gradients.

    select() computes the features, times the subclass's select_from() and logs one line with
    the subset size and the figures it reports in Subset.info.
    """

    needs_features = True
    label = "gradient"  # the name in the log line

    def select(self, context: SelectionContext) -> Subset:
        features = context.compute_features()
        start = time.perf_counter()
        subset = self.select_from(features, context)
        details = ", ".join(f"{key}={value}" for key, value in subset.info.items())
        logger.info("%s selection took %.2f s, picked %d of %d (%s)", self.label,
                    time.perf_counter() - start, len(subset.indices), context.num_train, details)
        return subset

    def select_from(self, features: Features, context: SelectionContext) -> Subset:
        raise NotImplementedError


STRATEGIES: dict[str, type[Strategy]] = {}


def register(name: str):
    """Class decorator that makes a strategy available as `strategy=<name>`."""

    def add(cls: type[Strategy]) -> type[Strategy]:
        STRATEGIES[name] = cls
        return cls

    return add

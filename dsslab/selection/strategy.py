"""The strategy interface, its settings and the registry that maps config names to classes."""

from dataclasses import dataclass

from dsslab.selection.base import SelectionContext, Subset


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


STRATEGIES: dict[str, type[Strategy]] = {}


def register(name: str):
    """Class decorator that makes a strategy available as `strategy=<name>`."""

    def add(cls: type[Strategy]) -> type[Strategy]:
        STRATEGIES[name] = cls
        return cls

    return add

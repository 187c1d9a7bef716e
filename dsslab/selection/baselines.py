"""Baselines: all the data, one random subset, a fresh random subset every round."""

import torch

from dsslab.selection.base import SelectionContext, Subset
from dsslab.selection.strategy import Strategy, register


@register("full")
class FullData(Strategy):
    """Every training sample, weight 1, every epoch."""

    adaptive = False
    uses_budget = False

    def select(self, context: SelectionContext) -> Subset:
        return Subset.uniform(torch.arange(context.num_train))


@register("random_online")
class RandomOnline(Strategy):
    """A uniform draw of `budget` samples without replacement at every round."""

    def select(self, context: SelectionContext) -> Subset:
        order = torch.randperm(context.num_train, generator=context.generator)
        return Subset.uniform(order[:context.budget].sort().values)


@register("random")
class RandomOnce(RandomOnline):
    """One uniform draw at the first round, kept for the whole run."""

    adaptive = False

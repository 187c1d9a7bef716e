"""When selection rounds happen and how many samples each epoch trains on."""

from dsslab.selection.strategy import Strategy


def first_selection_epoch(strategy: Strategy) -> int:
    """Rounds start right after the warm start (epochs are numbered from 1)."""
    return strategy.settings.warm_start_epochs + 1


def is_selection_epoch(strategy: Strategy, epoch: int) -> bool:
    """True at the first epoch after any warm start, then every `select_every` epochs."""
    first = first_selection_epoch(strategy)
    if epoch == first:
        return True
    since_first = epoch - first
    every = strategy.settings.select_every
    return strategy.adaptive and since_first > 0 and since_first % every == 0


def planned_subset_size(strategy: Strategy, epoch: int, budget: int, num_train: int) -> int:
    """Samples the epoch is expected to train on: everything while warming up or for full data."""
    if not strategy.uses_budget or epoch < first_selection_epoch(strategy):
        return num_train
    return budget

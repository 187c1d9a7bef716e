"""Splitting a selection budget across classes or mini-batches, in exact integer arithmetic."""


def class_budgets(class_sizes: list[int], budget: int) -> list[int]:
    """Per-class budgets proportional to class sizes, summing exactly to `budget`.

    Largest remainder: class c first gets floor(k n_c / N); the leftover picks go one each to
    the classes with the largest fractional parts (ties to the lower class index). When k is at
    least the number of non-empty classes, every non-empty class then gets at least one: a
    class left at zero takes one pick from the class with the largest budget (ties to the lower
    class index), in class order.
    """
    total = sum(class_sizes)
    if not 1 <= budget <= total:
        raise ValueError(f"budget must be in [1, {total}] (the number of samples), got {budget}")
    shares = [budget * size for size in class_sizes]
    budgets = [share // total for share in shares]
    leftover = budget - sum(budgets)
    by_remainder = sorted(range(len(shares)), key=lambda c: (-(shares[c] % total), c))
    for cls in by_remainder[:leftover]:
        budgets[cls] += 1

    non_empty = [cls for cls, size in enumerate(class_sizes) if size > 0]
    if budget >= len(non_empty):
        for cls in non_empty:
            if budgets[cls] == 0:
                donor = max(range(len(budgets)), key=lambda c: (budgets[c], -c))
                budgets[donor] -= 1
                budgets[cls] = 1
    return budgets


def batch_budget(budget: int, batch_size: int, num_batches: int) -> int:
    """Mini-batches to pick: k / batch_size rounded half up, at least 1, at most num_batches."""
    rounded = (2 * budget + batch_size) // (2 * batch_size)
    return min(num_batches, max(1, rounded))

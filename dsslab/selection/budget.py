"""Subset budgets computed exactly, without float rounding surprises."""

from decimal import ROUND_HALF_UP, Decimal


def budget_for(fraction: float, num_samples: int) -> int:
    """Return k = fraction x num_samples rounded half up, at least 1.

    The product is formed in decimal arithmetic from the fraction's shortest
    repr, so 0.29 x 100 is 29 and 0.14 x 50 is 7 (float products give 28.999...).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    exact = Decimal(repr(float(fraction))) * num_samples
    rounded = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return min(num_samples, max(1, rounded))

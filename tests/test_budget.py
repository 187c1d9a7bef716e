import pytest

from dsslab.selection.budget import budget_for


@pytest.mark.parametrize(("fraction", "size", "budget"), [
    (0.29, 100, 29),   # float product is 28.999999999999996
    (0.07, 100, 7),    # float product is 7.000000000000001
    (0.14, 50, 7),     # float product is 7.000000000000001
    (0.5, 3, 2),       # 1.5 rounds half up
    (0.25, 10, 3),     # 2.5 rounds half up
    (0.3, 1295, 389),  # 388.5 rounds half up
    (1.0, 1295, 1295),
    (0.001, 10, 1),    # never below one sample
    (1e-9, 45000, 1),
])
def test_budget_is_fraction_times_size_rounded_half_up(fraction, size, budget):
    assert budget_for(fraction, size) == budget


def test_budget_of_an_empty_set_is_an_error():
    with pytest.raises(ValueError, match="num_samples"):
        budget_for(0.5, 0)

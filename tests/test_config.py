import pytest
from hydra.errors import ConfigCompositionException

from dsslab.config import ConfigError, validate


def test_default_config_is_valid(make_config):
    validate(make_config())


@pytest.mark.parametrize(("override", "message"), [
    ("fraction=0", r"fraction=0 is not allowed: expected a number in \(0, 1\]"),
    ("fraction=-0.1", r"fraction=-0.1 is not allowed"),
    ("fraction=1.5", r"fraction=1.5 is not allowed: expected a number in \(0, 1\]"),
    ("fraction=abc", r"fraction='abc' is not allowed: expected a number"),
    ("fraction=true", r"fraction=True is not allowed"),
    ("epochs=0", r"epochs=0 is not allowed: expected a number >= 1"),
    ("epochs=2.5", r"epochs=2.5 is not allowed: expected an integer"),
    ("batch_size=0", r"batch_size=0 is not allowed"),
    ("wandb.mode=sometimes", r"wandb.mode='sometimes' is not allowed: expected one of offline"),
    ("hardware.kernels=fast", r"hardware.kernels='fast' is not allowed"),
    ("strategy.select_every=0", r"strategy.select_every=0 is not allowed"),
    ("+fraktion=0.3", r"unknown key 'fraktion'"),
    ("+strategy.selct_every=3", r"unknown key 'strategy.selct_every'"),
    ("+optimizer.momentun=0.9", r"unknown key 'optimizer.momentun'"),
    ("optimizer._target_=torch.optim.Nope", r"optimizer._target_='torch.optim.Nope' cannot"),
    ("dataset.val_fraction=1", r"dataset.val_fraction=1 is not allowed"),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(make_config, override, message):
    with pytest.raises(ConfigError, match=message):
        validate(make_config(override))


@pytest.mark.parametrize("override", ["strategy=nope", "model=nope", "dataset=nope"])
def test_unknown_group_choices_fail_at_composition(make_config, override):
    with pytest.raises(ConfigCompositionException, match=override.split("=")[1]):
        make_config(override)


def test_misspelled_keys_fail_at_composition(make_config):
    with pytest.raises(ConfigCompositionException, match="fraktion"):
        make_config("fraktion=0.3")


@pytest.mark.parametrize(("overrides", "message"), [
    (["strategy=gradmatch", "strategy.lam=-1"], r"strategy.lam must be >= 0, got -1"),
    (["strategy=glister", "strategy.greedy=fancy"], r"strategy.greedy must be one of"),
    (["strategy=glister", "strategy.epsilon=1.5"], r"strategy.epsilon must be in \(0, 1\)"),
])
def test_strategy_settings_are_checked_before_data_is_loaded(make_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(make_config(*overrides))

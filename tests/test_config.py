"""The config schema, its error messages, and the experiment matrix."""

from __future__ import annotations

import pytest
import yaml

from optreg.config import ConfigError, combinations, jobs, load_config, seed_block, validate_config


def test_default_config_is_valid_and_matrix_has_expected_size(root):
    config = load_config(root / "config" / "config.yaml")
    combos = combinations(config)
    by_study = {}
    for c in combos:
        by_study.setdefault(c.study, []).append(c)
    # 4 optimizers x 3 activations x 7 learning rates; none + (l1, l2) x 4 strengths.
    assert len(by_study["optimization"]) == 4 * 3 * 7
    assert len(by_study["regularization"]) == 1 + 2 * 4
    assert all(len(c.seeds) == 5 for c in combos)
    assert len({c.id for c in combos}) == len(combos)


def test_defaults_are_filled(smoke_config):
    config = validate_config(smoke_config)
    assert config["device"] == "cpu"
    assert config["threads"] == {"train": 1}
    assert config["dataset"]["validation_fraction"] == 0.2


def test_no_penalty_collapses_strength(smoke_config):
    config = validate_config(smoke_config)
    reg = [c for c in combinations(config) if c.study == "regularization"]
    none = [c for c in reg if c.settings["penalty"] == "none"]
    assert len(none) == 1
    assert none[0].settings["strength"] == 0.0
    assert none[0].id == "penalty-none_strength-0"


def test_settings_layer_defaults_fixed_factors(smoke_config):
    config = validate_config(smoke_config)
    reg = next(c for c in combinations(config) if c.study == "regularization")
    assert reg.settings["lr"] == 0.01  # fixed
    assert reg.settings["epochs"] == 3  # defaults
    assert reg.settings["dataset"]["name"] == "digits"


def test_seed_blocks_make_new_seeds_new_jobs(smoke_config):
    smoke_config["seeds_per_job"] = 5
    smoke_config["seeds"] = [0, 1, 2, 3, 4]
    before = {(j.study, j.combination.id, j.block) for j in jobs(validate_config(smoke_config))}
    smoke_config["seeds"] = list(range(10))
    after = jobs(validate_config(smoke_config))
    new = [j for j in after if (j.study, j.combination.id, j.block) not in before]
    assert new and all(j.seeds == (5, 6, 7, 8, 9) for j in new)
    assert seed_block(7, 5) == "5-9"


def test_changing_one_factor_value_changes_only_its_combinations(smoke_config):
    before = {c.id: c.settings for c in combinations(validate_config(smoke_config))}
    smoke_config["studies"]["optimization"]["factors"]["lr"] = [0.01, 0.3]
    after = {c.id: c.settings for c in combinations(validate_config(smoke_config))}
    changed = set(after) - set(before)
    assert changed == {c for c in after if c.endswith("lr-0.3")}
    assert all(before[c] == after[c] for c in set(after) & set(before))


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            lambda c: c["studies"]["optimization"]["factors"].update(optimizer=["adamw"]),
            "studies.optimization.factors.optimizer[0]",
        ),
        (
            lambda c: c["studies"]["optimization"]["factors"].update(activation=["gelu"]),
            "studies.optimization.factors.activation[0]",
        ),
        (
            lambda c: c["studies"]["regularization"]["factors"].update(penalty=["l3"]),
            "studies.regularization.factors.penalty[0]",
        ),
        (
            lambda c: c["studies"]["optimization"]["factors"].update(lr=[0.1, -0.1]),
            "studies.optimization.factors.lr[1]",
        ),
        (
            lambda c: c["studies"]["optimization"]["factors"].update(lr=[0]),
            "studies.optimization.factors.lr[0]",
        ),
        (
            lambda c: c["studies"]["optimization"]["factors"].update(lr=[]),
            "studies.optimization.factors.lr: empty list",
        ),
        (
            lambda c: c["studies"]["optimization"]["factors"].update(lr=[0.1, 0.1]),
            "studies.optimization.factors.lr: duplicate values",
        ),
        (
            lambda c: c["defaults"].update(epochz=3),
            "defaults.epochz: unknown key 'epochz' (did you mean 'epochs'?)",
        ),
        (lambda c: c.update(seed=[1]), "seed: unknown key 'seed' (did you mean 'seeds'?)"),
        (lambda c: c["studies"].update({"../evil": c["studies"]["optimization"]}), "'../evil'"),
        (
            lambda c: c["studies"]["regularization"]["factors"].update(strength=[0.0]),
            "studies.regularization.factors.strength[0]",
        ),
        (
            lambda c: c["studies"]["optimization"].update(fixed={"lr": 0.1}),
            "studies.optimization.fixed.lr: 'lr' is also a factor",
        ),
        (
            lambda c: c["defaults"].update(epochs="ten"),
            "defaults.epochs: 'ten' is not of type 'integer'",
        ),
        (lambda c: c.update(max_runs=3), "max_runs: the matrix has"),
        (
            lambda c: c["studies"]["regularization"]["factors"].pop("strength"),
            "studies.regularization: penalty 'l1' needs a positive strength",
        ),
    ],
)
def test_bad_config_names_the_key(smoke_config, edit, needle):
    edit(smoke_config)
    with pytest.raises(ConfigError) as err:
        validate_config(smoke_config)
    assert needle in str(err.value)


def test_yaml_syntax_error_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("studies: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_float_values_that_format_equal_are_duplicates(smoke_config):
    smoke_config["studies"]["optimization"]["factors"]["lr"] = [0.1, 0.1000000001]
    with pytest.raises(ConfigError, match="equal once formatted"):
        validate_config(smoke_config)


def test_smoke_config_round_trips_through_yaml(root, smoke_config):
    assert validate_config(yaml.safe_load(yaml.safe_dump(smoke_config)))


def test_combination_ids_do_not_depend_on_factor_order(smoke_config):
    before = [c.id for c in combinations(validate_config(smoke_config))]
    factors = smoke_config["studies"]["optimization"]["factors"]
    smoke_config["studies"]["optimization"]["factors"] = dict(reversed(list(factors.items())))
    after = [c.id for c in combinations(validate_config(smoke_config))]
    assert sorted(before) == sorted(after)

"""The config schema, its error messages, and the experiment matrix."""

from __future__ import annotations

import pytest
import yaml

from optreg.settings import Settings
from optreg.study.errors import ConfigError
from optreg.study.matrix import cells, jobs, plan_looks, rate_traits, seed_block
from optreg.study.validate import load_config, validate_config


def test_default_config_is_valid_and_matrix_has_expected_size(root):
    config = load_config(root / "config" / "config.yaml")
    by_study = {}
    for c in cells(config):
        by_study.setdefault(c.study, []).append(c)
    assert len(by_study["optimization"]) == 4 * 2 * 2  # optimizers x activations x depths
    assert len(by_study["regularization"]) == 1 + 4 * 6  # none + 4 penalties x 6 strengths
    assert len(by_study["regularization_underfit"]) == 1 + 4 * 6
    # Five decades of strength: each penalty's best inside the grid (docs/regularization.md).
    strengths = {c.factors["strength"] for c in by_study["regularization"]} - {0.0}
    assert max(strengths) / min(strengths) >= 1e5
    assert len(by_study["problems"]) == 3 * 4
    # MNIST-1D is the default problem; depth 1 and 3 hidden layers of 100 units.
    deep = [c for c in by_study["optimization"] if c.factors["depth"] == 3]
    assert {tuple(c.settings["model"]["hidden"]) for c in deep} == {(100, 100, 100)}
    assert {c.settings["data"]["dataset"] for c in by_study["regularization"]} == {"mnist1d"}
    # The regularization study where the network overfits: 2 x 256 on 800 training signals.
    overfit = {tuple(c.settings["model"]["hidden"]) for c in by_study["regularization"]}
    assert overfit == {(256, 256)}
    assert {c.settings["data"]["train_size"] for c in by_study["regularization"]} == {800}
    claimed = by_study["optimization"] + by_study["regularization"]
    assert all(c.settings.epochs >= 40 for c in claimed)  # where training converged
    problems = {c.factors["problem"] for c in by_study["problems"]}
    assert problems == {"digits_mlp", "digits_cnn", "cancer_mlp"}
    grid = config["protocol"]["lr_grid"]
    assert len(grid) >= 7 and max(grid) / min(grid) >= 1000
    assert len(config["protocol"]["tuning_seeds"]) >= 3
    assert len(config["protocol"]["evaluation_seeds"]) >= 5
    # The tuning seeds and the evaluation seeds each fill one block: one job per cell.
    assert [j.phase for j in jobs(config)] == ["tune-eval"] * len(cells(config))


def test_the_reference_preset_is_the_papers_setup(root):
    config = load_config(root / "config" / "mnist1d_reference.yaml")
    (study,) = config["studies"]
    models = {c.factors["problem"]: c.settings["model"] for c in cells(config)}
    assert models["mnist1d_logistic"] == {"model": "mlp", "hidden": []}
    assert models["mnist1d_cnn"] == {"model": "cnn", "channels": [25] * 3, "kernel": [5, 3, 3]}
    published = {k: p["published_test_accuracy"] for k, p in config["problems"].items()}
    assert published == {"mnist1d_logistic": 0.32, "mnist1d_mlp": 0.68, "mnist1d_cnn": 0.94}
    assert config["protocol"]["lr_grid"] == [0.01] and config["defaults"]["optimizer"] == "adam"
    assert config["defaults"]["batch_size"] == 100


def test_defaults_are_filled(smoke_config):
    config = validate_config(smoke_config)
    assert config["device"] == "cpu"
    assert config["threads"]["train"] == 1 and config["threads"]["report"] == 1
    assert config["data"]["validation_fraction"] == 0.2
    assert config["protocol"]["target_val_accuracy"] == 0.5


def test_no_penalty_collapses_strength(smoke_config):
    config = validate_config(smoke_config)
    reg = [c for c in cells(config) if c.study == "regularization"]
    none = [c for c in reg if c.settings["penalty"] == "none"]
    assert len(none) == 1
    assert none[0].settings["strength"] == 0.0
    assert none[0].id == "penalty-none_strength-0"


def test_settings_layer_defaults_fixed_factors_and_problem(smoke_config):
    config = validate_config(smoke_config)
    reg = next(c for c in cells(config) if c.study == "regularization")
    assert reg.settings["optimizer"] == "adam"  # fixed
    assert reg.settings["epochs"] == 3  # defaults
    assert reg.settings["data"]["dataset"] == "digits"
    assert reg.settings["model"] == {"model": "mlp", "hidden": [16]}
    cnn = next(c for c in cells(config) if c.factors.get("problem") == "digits_cnn")
    assert cnn.settings["model"]["model"] == "cnn" and cnn.settings["model"]["channels"] == [4, 8]
    assert cnn.default_lr == config["protocol"]["default_lr"][cnn.settings["optimizer"]]


def test_depth_and_width_shape_the_mlp_and_name_the_cell(smoke_config):
    smoke_config["studies"]["optimization"]["factors"]["depth"] = [1, 3]
    smoke_config["studies"]["optimization"]["fixed"] = {"width": 5}
    config = validate_config(smoke_config)
    opt = [c for c in cells(config) if c.study == "optimization"]
    assert len(opt) == 3 * 2 * 2
    deep = next(c for c in opt if c.factors["depth"] == 3)
    assert deep.settings["model"] == {"model": "mlp", "hidden": [5, 5, 5]}
    # Factor order is canonical: depth after the activation, whatever order the config uses.
    assert deep.id.startswith("optimizer-momentum_activation-relu_depth-3")
    # Depth is a shape, not a setting: the run is the run of a problem with that network.
    assert "depth" not in deep.settings and "width" not in deep.settings


def test_depth_of_a_cnn_problem_is_refused(smoke_config):
    smoke_config["studies"]["problems"]["factors"]["depth"] = [1, 2]
    with pytest.raises(
        ConfigError, match="studies.problems: depth apply to MLP problems only.*digits_cnn"
    ):
        validate_config(smoke_config)


def test_depth_and_width_columns_come_from_the_model():
    from optreg.analysis.tables import mlp_shape

    assert mlp_shape({"model": "mlp", "hidden": [100, 100, 100]}) == {"depth": 3, "width": 100}
    assert mlp_shape({"model": "mlp", "hidden": [12, 6]}) == {"depth": 2, "width": None}
    assert mlp_shape({"model": "cnn", "channels": [4]}) == {"depth": None, "width": None}


def test_rate_traits_say_which_studies_tune_and_which_train_at_default_rates(root):
    """The default study: the regularization studies train Adam at its default rate alone
    (their figures of the rate would show one point, or the same runs twice); a one-rate
    grid off the default rate still compares tuned with default."""
    config = load_config(root / "config" / "config.yaml")
    traits = rate_traits(cells(config))
    assert traits["optimization"] == traits["problems"] == {"grid", "choice"}
    assert traits["regularization"] == traits["regularization_underfit"] == frozenset()
    config["studies"]["regularization"]["lr_grid"] = [0.01]
    assert rate_traits(cells(config))["regularization"] == {"choice"}


def test_new_evaluation_seeds_make_new_jobs_only(smoke_config):
    smoke_config["seeds_per_job"] = 2
    before = {(j.study, j.phase, j.cell.id, j.block) for j in jobs(validate_config(smoke_config))}
    smoke_config["protocol"]["evaluation_seeds"] = [10, 11, 12, 13]
    after = jobs(validate_config(smoke_config))
    new = [j for j in after if (j.study, j.phase, j.cell.id, j.block) not in before]
    assert new and all(j.phase == "eval" and j.seeds == (12, 13) for j in new)
    assert seed_block(7, 5) == "5-9"


def test_changing_one_factor_value_changes_only_its_cells(smoke_config):
    before = {c.id: c.settings for c in cells(validate_config(smoke_config))}
    smoke_config["studies"]["optimization"]["factors"]["activation"] = ["relu", "tanh"]
    after = {c.id: c.settings for c in cells(validate_config(smoke_config))}
    assert set(after) - set(before) == {c for c in after if c.endswith("activation-tanh")}
    assert all(before[c] == after[c] for c in set(after) & set(before))


def test_cell_ids_do_not_depend_on_factor_order(smoke_config):
    before = [c.id for c in cells(validate_config(smoke_config))]
    factors = smoke_config["studies"]["optimization"]["factors"]
    smoke_config["studies"]["optimization"]["factors"] = dict(reversed(list(factors.items())))
    after = [c.id for c in cells(validate_config(smoke_config))]
    assert sorted(before) == sorted(after)


def test_job_run_counts(smoke_config):
    config = validate_config({**smoke_config, "seeds_per_job": 1})
    grid = len(config["protocol"]["lr_grid"])
    job = next(j for j in jobs(config) if j.phase == "tune")
    assert job.runs == grid * len(job.seeds)
    job = next(j for j in jobs(config) if j.phase == "eval")
    assert job.runs == 2 * len(job.seeds)
    (fused, *_) = jobs(validate_config(smoke_config))
    assert fused.phase == "tune-eval"
    assert fused.runs == grid * len(fused.tuning_seeds) + 2 * len(fused.seeds)


def test_one_tuning_block_is_fused_with_the_first_evaluation_block(smoke_config):
    smoke_config["protocol"]["tuning_seeds"] = [0, 1]
    smoke_config["protocol"]["evaluation_seeds"] = [10, 11, 12]
    smoke_config["seeds_per_job"] = 2
    first_cell = jobs(validate_config(smoke_config))[:2]
    assert [(j.phase, j.block, j.seeds, j.tuning_seeds) for j in first_cell] == [
        ("tune-eval", "0-1_10-11", (10, 11), (0, 1)),
        ("eval", "12-13", (12,), ()),
    ]
    smoke_config["protocol"]["tuning_seeds"] = [0, 1, 2]  # two tuning blocks: no fusing
    first_cell = jobs(validate_config(smoke_config))[:4]
    assert [(j.phase, j.block, j.seeds) for j in first_cell] == [
        ("tune", "0-1", (0, 1)),
        ("tune", "2-3", (2,)),
        ("eval", "10-11", (10, 11)),
        ("eval", "12-13", (12,)),
    ]


def test_yaml_syntax_error_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("studies: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_smoke_config_round_trips_through_yaml(smoke_config):
    assert validate_config(yaml.safe_load(yaml.safe_dump(smoke_config)))


def test_all_problems_reported_at_once(smoke_config):
    smoke_config["defaults"]["epochz"] = 3
    smoke_config["protocol"]["lr_grid"] = [0.1, -1]
    with pytest.raises(ConfigError) as err:
        validate_config(smoke_config)
    assert "defaults.epochz" in str(err.value) and "protocol.lr_grid[1]" in str(err.value)


@pytest.mark.parametrize("model", ["a100-80gb", "a100:2", "h100 nvl"])
def test_gpu_model_the_slurm_executor_would_refuse_is_a_config_error(smoke_config, model):
    # The SLURM executor accepts `--gpus=MODEL:N` only for MODEL in [A-Za-z0-9_.]+.
    with pytest.raises(ConfigError, match="gpu_model"):
        validate_config({**smoke_config, "gpu_model": model})
    assert validate_config({**smoke_config, "gpu_model": "a100_80gb"})["gpu_model"] == "a100_80gb"


# ---------------------------------------------------------------- runs shared by studies
NONE_CELL = ("regularization", "penalty-none_strength-0")
ADAM_RELU = ("optimization", "optimizer-adam_activation-relu")


def shared_jobs(config: dict) -> dict:
    """(study, cell id, block) -> (study, cell id, block) of the job that trains its runs."""
    return {
        (j.study, j.cell.id, j.block): (j.source.study, j.source.cell.id, j.source.block)
        for j in jobs(validate_config(config))
        if not j.trains
    }


def test_an_identical_cell_of_a_later_study_reads_the_first_ones_runs(smoke_config):
    # regularization fixes adam and relu: its `none` cell is optimization's adam+relu cell.
    assert shared_jobs(smoke_config) == {(*NONE_CELL, "0-1_10-11"): (*ADAM_RELU, "0-1_10-11")}
    planned = jobs(validate_config(smoke_config))
    source = next(j for j in planned if not j.trains).source
    assert source.trains and source.trained_by is source and source in planned
    # Shared block by block, each with its equal: blocks of one seed make 4 jobs a cell.
    smoke_config["seeds_per_job"] = 1
    shared = shared_jobs(smoke_config)
    assert len(shared) == 4 and all(k[2] == v[2] and v[:2] == ADAM_RELU for k, v in shared.items())
    # The first study in the config's order trains it.
    smoke_config["studies"] = dict(reversed(list(smoke_config["studies"].items())))
    assert {v[:2] for v in shared_jobs(smoke_config).values()} == {NONE_CELL}


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["studies"]["regularization"]["fixed"].update(epochs=4),
        lambda c: c["studies"]["regularization"]["fixed"].update(momentum=0.5),
        lambda c: c["studies"]["regularization"].update(lr_grid=[0.01, 0.1, 1.0]),
        lambda c: c["studies"]["optimization"].update(lr_grid=[0.01, 0.1, 1.0]),
        lambda c: (
            c["problems"].update(digits_wide={**c["problems"]["digits_mlp"], "hidden": [32]})
            or c["studies"]["regularization"]["fixed"].update(problem="digits_wide")
        ),
    ],
)
def test_a_cell_that_differs_in_anything_trained_is_not_shared(smoke_config, edit):
    edit(smoke_config)
    assert shared_jobs(smoke_config) == {}


def test_a_studys_own_target_trains_nothing_new_and_is_a_fraction(smoke_config):
    import copy

    from optreg.study.matrix import training_key

    def keys(config):
        return [training_key(j) for j in jobs(validate_config(copy.deepcopy(config)))]

    before = keys(smoke_config)
    smoke_config["studies"]["regularization"]["target_val_accuracy"] = 0.4
    assert keys(smoke_config) == before
    smoke_config["studies"]["regularization"]["target_val_accuracy"] = 1.5
    with pytest.raises(ConfigError, match="target_val_accuracy"):
        validate_config(smoke_config)


def test_the_training_key_holds_what_a_job_trains_and_not_its_names(smoke_config):
    import dataclasses

    from optreg.study.matrix import training_key

    job = jobs(validate_config(smoke_config))[0]
    renamed = dataclasses.replace(
        job, cell=dataclasses.replace(job.cell, study="other", factors={"x": 1})
    )
    assert training_key(renamed) == training_key(job)
    for changed in (
        dataclasses.replace(job, cell=dataclasses.replace(job.cell, default_lr=0.5)),
        dataclasses.replace(job, cell=dataclasses.replace(job.cell, lr_grid=(0.01,))),
        dataclasses.replace(job, seeds=(10, 12)),
        dataclasses.replace(job, tuning_seeds=(0,)),
        dataclasses.replace(job, block="0-1_10-12"),
        dataclasses.replace(
            job,
            cell=dataclasses.replace(
                job.cell, settings=Settings.of({**job.cell.settings, "data": {"dataset": "iris"}})
            ),
        ),
    ):
        assert training_key(changed) != training_key(job)


def test_equal_jobs_of_one_study_keep_their_own_folders(smoke_config):
    import dataclasses

    from optreg.study.matrix import share_runs

    job = jobs(validate_config(smoke_config))[0]
    twin = dataclasses.replace(job, cell=dataclasses.replace(job.cell, factors={"x": 1}))
    other = dataclasses.replace(job, cell=dataclasses.replace(job.cell, study="later"))
    shared = share_runs([job, twin, other])
    assert [j.trains for j in shared] == [True, True, False]
    assert shared[2].source is job


# ---- reading config files (issue 24)
def test_merge_keys_are_read_and_keys_given_beside_them_win(tmp_path):
    from optreg.study.config_files import read_config_file

    path = tmp_path / "c.yaml"
    path.write_text(
        "base: &base {epochs: 3, batch_size: 128}\n"
        "a:\n  <<: *base\n  epochs: 4\n"
        "b:\n  <<: [*base, {momentum: 0.5}]\n"
    )
    assert read_config_file(path) == yaml.safe_load(path.read_text())
    assert read_config_file(path)["a"] == {"epochs": 4, "batch_size": 128}
    path.write_text("a:\n  <<: {x: 1}\n  y: 2\n  y: 3\n")  # still a duplicate beside a merge
    with pytest.raises(ConfigError, match="key 'y' is given twice, on lines 3 and 4"):
        read_config_file(path)


def test_a_config_file_past_its_bounds_is_refused_before_it_is_walked(tmp_path, monkeypatch):
    from optreg.study import config_files
    from optreg.study.config_files import read_config_file

    path = tmp_path / "c.yaml"
    path.write_text("protocol:\n  lr_grid: [" + ", ".join(["0.1"] * 300_000) + "]\n")
    with pytest.raises(ConfigError, match=r"c.yaml: 1,500,0\d\d bytes, more than .* 1,000,000"):
        read_config_file(path)
    # Exactly at the bound is read; one more value is refused (a smaller bound, read faster).
    monkeypatch.setattr(config_files, "MAX_VALUES", 1000)
    path.write_text("a: [" + ", ".join(["1"] * 997) + "]\n")  # 1000 with the mapping, key, list
    assert len(read_config_file(path)["a"]) == 997
    path.write_text("a: [" + ", ".join(["1"] * 998) + "]\n")
    with pytest.raises(ConfigError, match="line 1, <top level>: holds more than 1,000 values"):
        read_config_file(path)
    path.write_text("a: [" + ", ".join(["1"] * 1000) + "]\n")
    with pytest.raises(ConfigError, match="line 1, a: holds more than 1,000 values"):
        read_config_file(path)
    path.write_text("a: " + "[" * 31 + "]" * 31 + "\n")
    assert read_config_file(path) is not None
    path.write_text("a: " + "[" * 32 + "]" * 32 + "\n")
    with pytest.raises(ConfigError, match="nest more than 32 levels deep"):
        read_config_file(path)
    path.write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")  # deeper than Python recurses
    with pytest.raises(ConfigError, match="nest more than 32 levels deep"):
        read_config_file(path)
    path.write_text("a: &a {b: *a}\n")
    with pytest.raises(ConfigError, match=r"line 1, a.b: an alias .* \(a loop\)"):
        read_config_file(path)


def test_retuning_seeds_are_tuning_seeds_of_every_cell_with_a_grid(smoke_config):
    smoke_config["protocol"].update(
        lr_grid=[0.001, 0.01, 0.1, 1.0], tuning_seeds=[0], retuning_seeds=[1]
    )
    smoke_config["studies"]["regularization"]["lr_grid"] = [0.001]
    config = validate_config(smoke_config)
    by_study = {}
    for job in jobs(config):
        by_study.setdefault(job.study, job)
    fused = by_study["optimization"]
    assert (fused.phase, fused.tuning_seeds, fused.cell.retuning_seeds) == (
        "tune-eval",
        (0, 1),
        (1,),
    )
    protocols = {name.split("_seed-")[0] for name in fused.files if not name.startswith("lr-")}
    assert protocols == {"tuned", "oneshot", "small", "retuned"}
    assert fused.runs == 4 * 2 + 4 * len(fused.seeds)
    # A one-rate grid chooses nothing: neither retuned nor tuned on a small grid.
    single = by_study["regularization"]
    assert single.cell.retuning_seeds == () and single.tuning_seeds == (0,)
    assert {n.split("_seed-")[0] for n in single.files if not n.startswith("lr-")} == {
        "tuned",
        "oneshot",
    }


@pytest.mark.parametrize("other", ["tuning_seeds", "evaluation_seeds"])
def test_retuning_seeds_of_their_own(smoke_config, other):
    smoke_config["protocol"]["retuning_seeds"] = [smoke_config["protocol"][other][0], 50]
    name = other.split("_")[0]
    with pytest.raises(ConfigError, match=f"retuning_seeds: seeds .* are also {name} seeds"):
        validate_config(smoke_config)


def test_sequential_seeds_make_later_looks_of_eval_jobs(smoke_config):
    """protocol.sequential: each look's block of further seeds is a train job per cell,
    marked with its look; the workflow trains it only for cells a look finds open."""
    smoke_config["protocol"]["sequential"] = {"seeds": [20, 21, 22, 23], "block": 2}
    config = validate_config(smoke_config)
    assert plan_looks(config["protocol"]) == [[10, 11], [20, 21], [22, 23]]
    later = [j for j in jobs(config) if j.look > 1]
    assert {(j.phase, j.block, j.look) for j in later} == {
        ("eval", "20-21", 2),
        ("eval", "22-23", 3),
    }
    assert len(later) == 2 * len(cells(config))
    # Without it, one look: the jobs are those of before.
    smoke_config["protocol"].pop("sequential")
    assert all(j.look == 1 for j in jobs(validate_config(smoke_config)))


@pytest.mark.parametrize(
    ("sequential", "words"),
    [
        ({"seeds": [10, 30]}, r"sequential.seeds: seeds \[10\] are also evaluation seeds"),
        ({"seeds": [0, 30]}, r"sequential.seeds: seeds \[0\] are also tuning seeds"),
        # seeds_per_job 2: seed 12 would share job block 12-13 with look 3's seed 13
        ({"seeds": [12, 13], "block": 1}, "seed block 12-13 .* look 2 and of look 3"),
        ({"seeds": [11.5]}, "sequential"),
        ({"block": 0, "seeds": [20]}, "block"),
    ],
)
def test_sequential_seeds_of_their_own_in_blocks_of_their_own(smoke_config, sequential, words):
    smoke_config["protocol"]["sequential"] = sequential
    with pytest.raises(ConfigError, match=words):
        validate_config(smoke_config)

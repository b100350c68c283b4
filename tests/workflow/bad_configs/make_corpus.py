"""Write the corpus of malformed configs: each is config/smoke.yaml with one thing wrong.

Run `python tests/workflow/bad_configs/make_corpus.py` after a change to the config format. Each
file's first line `# expect: <text>` is what its error message must contain. A case
typed on the command line instead has a second line `# config: <key=value>`: the file is
config/smoke.yaml as it is, and the entry is passed to `snakemake --config`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

HERE = Path(__file__).parent
BASE = yaml.safe_load((HERE.parents[2] / "config" / "smoke.yaml").read_text())


def opt(c):
    return c["studies"]["optimization"]


def reg(c):
    return c["studies"]["regularization"]


CASES = [
    (
        "unknown_optimizer",
        "studies.optimization.factors.optimizer[1]: 'adamw' is not one of",
        lambda c: opt(c)["factors"].update(optimizer=["adam", "adamw"]),
    ),
    (
        "unknown_activation",
        "studies.optimization.factors.activation[0]: 'gelu' is not one of",
        lambda c: opt(c)["factors"].update(activation=["gelu"]),
    ),
    (
        "unknown_penalty",
        "studies.regularization.factors.penalty[2]: 'l3' is not one of",
        lambda c: reg(c)["factors"].update(penalty=["none", "l1", "l3"]),
    ),
    (
        "negative_lr",
        "protocol.lr_grid[1]: -0.1 is less than or equal to the minimum of 0",
        lambda c: c["protocol"].update(lr_grid=[0.01, -0.1]),
    ),
    (
        "zero_lr",
        "protocol.lr_grid[0]: 0 is less than or equal to the minimum of 0",
        lambda c: c["protocol"].update(lr_grid=[0, 0.1]),
    ),
    (
        "zero_default_lr",
        "protocol.default_lr.adam: 0 is less than or equal to the minimum of 0",
        lambda c: c["protocol"]["default_lr"].update(adam=0),
    ),
    (
        "zero_strength",
        "studies.regularization.factors.strength[0]: 0 is less than or equal to the minimum of 0",
        lambda c: reg(c)["factors"].update(strength=[0, 0.01]),
    ),
    (
        "negative_strength",
        "studies.regularization.factors.strength[1]: -0.01 is less than or equal to the minimum",
        lambda c: reg(c)["factors"].update(strength=[0.01, -0.01]),
    ),
    (
        "empty_factor",
        "studies.optimization.factors.activation: empty list",
        lambda c: opt(c)["factors"].update(activation=[]),
    ),
    ("empty_grid", "protocol.lr_grid: empty list", lambda c: c["protocol"].update(lr_grid=[])),
    (
        "duplicate_factor_values",
        "studies.optimization.factors.optimizer: duplicate values",
        lambda c: opt(c)["factors"].update(optimizer=["adam", "adam"]),
    ),
    (
        "duplicate_after_formatting",
        "protocol.lr_grid: values ['0.1'] are equal once formatted",
        lambda c: c["protocol"].update(lr_grid=[0.1, 0.1000000001]),
    ),
    (
        "empty_seeds",
        "protocol.tuning_seeds: empty list",
        lambda c: c["protocol"].update(tuning_seeds=[]),
    ),
    (
        "duplicate_seeds",
        "protocol.evaluation_seeds: duplicate values",
        lambda c: c["protocol"].update(evaluation_seeds=[10, 10]),
    ),
    (
        "negative_seed",
        "protocol.tuning_seeds[0]: -1 is less than the minimum of 0",
        lambda c: c["protocol"].update(tuning_seeds=[-1, 1]),
    ),
    (
        "overlapping_seeds",
        "protocol.evaluation_seeds: seeds [1] are also tuning seeds",
        lambda c: c["protocol"].update(evaluation_seeds=[1, 10]),
    ),
    (
        "misspelled_top_key",
        "unknown key 'protocl' (did you mean 'protocol'?)",
        lambda c: c.update(protocl={}),
    ),
    (
        "misspelled_setting",
        "defaults.epochz: unknown key 'epochz' (did you mean 'epochs'?)",
        lambda c: c["defaults"].update(epochz=3),
    ),
    (
        "misspelled_study_key",
        "studies.optimization.factor: unknown key 'factor' (did you mean 'factors'?)",
        lambda c: opt(c).update(factor=opt(c).pop("factors")),
    ),
    (
        "lr_as_factor",
        "studies.optimization.factors.lr: unknown key 'lr'",
        lambda c: opt(c)["factors"].update(lr=[0.1]),
    ),
    (
        "study_name_with_slash",
        "studies: name 'opt/imization' must start with a letter",
        lambda c: c["studies"].update({"opt/imization": c["studies"].pop("optimization")}),
    ),
    (
        "study_name_with_dotdot",
        "studies: name '..' must start with a letter",
        lambda c: c["studies"].update({"..": c["studies"].pop("optimization")}),
    ),
    (
        "problem_name_with_slash",
        "problems: name '../x' must start with a letter",
        lambda c: c["problems"].update({"../x": c["problems"]["digits_mlp"]}),
    ),
    (
        "unknown_problem",
        "studies.problems.factors.problem[0]: unknown problem 'mnist_mlp'",
        lambda c: c["studies"]["problems"]["factors"].update(problem=["mnist_mlp"]),
    ),
    (
        "cnn_on_a_table",
        "problems.cancer_mlp.dataset: 'breast_cancer' is not one of ['digits', 'mnist1d', 'mnist', "
        "'fashion_mnist', 'cifar10']",
        lambda c: c["problems"]["cancer_mlp"].update(model="cnn"),
    ),
    (
        "wrong_type_epochs",
        "defaults.epochs: 'ten' is not of type 'integer'",
        lambda c: c["defaults"].update(epochs="ten"),
    ),
    (
        "wrong_type_hidden",
        "problems.digits_mlp.hidden: 16 is not of type 'array'",
        lambda c: c["problems"]["digits_mlp"].update(hidden=16),
    ),
    (
        "wrong_type_factors",
        "studies.optimization.factors.activation: 'relu' is not of type 'array'",
        lambda c: opt(c)["factors"].update(activation="relu"),
    ),
    (
        "fixed_and_factor",
        "studies.regularization.fixed.penalty: 'penalty' is also a factor",
        lambda c: reg(c)["fixed"].update(penalty="l2"),
    ),
    (
        "penalty_without_strength",
        "studies.regularization: penalty 'l1' needs a positive strength",
        lambda c: reg(c)["factors"].pop("strength"),
    ),
    (
        "matrix_too_large",
        "max_runs: the matrix has 120 runs, more than max_runs=10",
        lambda c: c.update(max_runs=10),
    ),
    (
        "unknown_dataset",
        "problems.digits_mlp.dataset: 'imagenet' is not one of",
        lambda c: c["problems"]["digits_mlp"].update(dataset="imagenet"),
    ),
    ("unknown_device", "device: 'tpu' is not one of", lambda c: c.update(device="tpu")),
    (
        "zero_threads",
        "threads.train: 0 is less than the minimum of 1",
        lambda c: c.update(threads={"train": 0}),
    ),
    ("no_studies", "studies: {} should be non-empty", lambda c: c.update(studies={})),
    (
        "momentum_one",
        "defaults.momentum: 1 is greater than or equal to the maximum of 1",
        lambda c: c["defaults"].update(momentum=1),
    ),
    ("missing_protocol", "'protocol' is a required property", lambda c: c.pop("protocol")),
    (
        "depth_of_a_cnn",
        "studies.problems: depth apply to MLP problems only, but problem 'digits_cnn' is a cnn",
        lambda c: c["studies"]["problems"]["factors"].update(depth=[1, 2]),
    ),
    (
        "lr_limits_inside_the_grid",
        "protocol.lr_limits: [0.05, 10] must contain every grid, but protocol.lr_grid spans",
        lambda c: c["protocol"].update(lr_limits=[0.05, 10]),
    ),
    (
        "unknown_mnist1d_argument",
        "data.mnist1d.sead: unknown key 'sead' (did you mean 'seed'?)",
        lambda c: c.update(data={"mnist1d": {"sead": 1}}),
    ),
    (
        "mnist1d_padding_reversed",
        "data.mnist1d.padding: [60, 36] must be [low, high] with low <= high",
        lambda c: c.update(data={"mnist1d": {"padding": [60, 36]}}),
    ),
    (
        "kernel_on_an_mlp",
        "problems.digits_mlp.kernel: [3] is expected to be empty",
        lambda c: c["problems"]["digits_mlp"].update(kernel=[3]),
    ),
    (
        "target_above_one",
        "protocol.target_val_accuracy: 1.5 is greater than the maximum of 1",
        lambda c: c["protocol"].update(target_val_accuracy=1.5),
    ),
    (
        "retuning_seeds_that_tune",
        "protocol.retuning_seeds: seeds [0] are also tuning seeds",
        lambda c: c["protocol"].update(retuning_seeds=[0, 5]),
    ),
    (
        "retuning_seeds_that_evaluate",
        "protocol.retuning_seeds: seeds [10] are also evaluation seeds",
        lambda c: c["protocol"].update(retuning_seeds=[5, 10]),
    ),
]
# Issue 15: the classes of bad input that got past validation. Non-finite numbers:
NAN = float("nan")
CASES += [
    (
        "nan_lr",
        "protocol.lr_grid[1]: nan is not a finite number",
        lambda c: c["protocol"].update(lr_grid=[0.01, NAN]),
    ),
    (
        "inf_strength",
        "studies.regularization.factors.strength[1]: inf is not a finite number",
        lambda c: reg(c)["factors"].update(strength=[0.01, float("inf")]),
    ),
    (
        "nan_momentum",
        "defaults.momentum: nan is not a finite number",
        lambda c: c["defaults"].update(momentum=NAN),
    ),
    (
        "nan_target",
        "protocol.target_val_accuracy: nan is not a finite number",
        lambda c: c["protocol"].update(target_val_accuracy=NAN),
    ),
    (
        "nan_validation_fraction",
        "data.validation_fraction: nan is not a finite number",
        lambda c: c.update(data={"validation_fraction": NAN}),
    ),
    (
        "minus_inf_default_lr",
        "protocol.default_lr.sgd: -inf is not a finite number",
        lambda c: c["protocol"]["default_lr"].update(sgd=float("-inf")),
    ),
    # Whole numbers written as floats where integers belong.
    (
        "float_epochs",
        "defaults.epochs: 3.0 is not of type 'integer' (write 3)",
        lambda c: c["defaults"].update(epochs=3.0),
    ),
    (
        "float_batch_size",
        "defaults.batch_size: 128.0 is not of type 'integer' (write 128)",
        lambda c: c["defaults"].update(batch_size=128.0),
    ),
    (
        "float_tuning_seed",
        "protocol.tuning_seeds[1]: 1.0 is not of type 'integer' (write 1)",
        lambda c: c["protocol"].update(tuning_seeds=[0, 1.0]),
    ),
    (
        "float_hidden_width",
        "problems.digits_mlp.hidden[0]: 16.0 is not of type 'integer' (write 16)",
        lambda c: c["problems"]["digits_mlp"].update(hidden=[16.0]),
    ),
    (
        "float_epochs_factor",
        "studies.optimization.factors.epochs[1]: 3.0 is not of type 'integer'",
        lambda c: opt(c)["factors"].update(epochs=[2, 3.0]),
    ),
    # Names matched in full: Python's `$` also matches before a final newline.
    (
        "study_name_with_newline",
        "studies: name 'optimization\\n' must start with a letter",
        lambda c: c["studies"].update({"optimization\n": c["studies"].pop("optimization")}),
    ),
    (
        "problem_name_with_newline",
        "problems: name 'digits\\n' must start with a letter",
        lambda c: c["problems"].update({"digits\n": c["problems"]["digits_mlp"]}),
    ),
    (
        "gpu_model_with_newline",
        "gpu_model: 'A100\\n' does not match",
        lambda c: c.update(gpu_model="A100\n"),
    ),
    (
        "study_name_with_dash",
        "studies: name 'opt-imization' must start with a letter",
        lambda c: c["studies"].update({"opt-imization": c["studies"].pop("optimization")}),
    ),
    # Models that cannot fit their data, paths of the wrong kind.
    (
        "cnn_too_deep",
        "problems.digits_cnn.channels: 4 convolution blocks (each pools 2x2) do not fit the "
        "1x8x8 images of 'digits'; at most 3",
        lambda c: c["problems"]["digits_cnn"].update(channels=[4, 8, 16, 32]),
    ),
    (
        "conv1d_too_deep",
        "problems.signal_cnn.channels: 3 stride-2 convolutions with kernels [5, 5, 5] shrink "
        "the length-4 signals of 'mnist1d' below one sample",
        lambda c: (
            c["problems"].update(
                signal_cnn={
                    "dataset": "mnist1d",
                    "model": "cnn",
                    "channels": [4, 4, 4],
                    "kernel": [5, 5, 5],
                }
            ),
            c.update(data={"mnist1d": {"final_seq_length": 4}}),
        ),
    ),
    (
        "data_root_is_a_file",
        "data.root: 'workflow/Snakefile' is a file",
        lambda c: c.update(data={"root": "workflow/Snakefile"}),
    ),
    # YAML reads an unquoted `1:` as a number: no name at all.
    (
        "number_as_study_name",
        "studies: key 1 is not text",
        lambda c: c["studies"].update({1: c["studies"].pop("problems")}),
    ),
    # Third-party optimizers (pytorch-optimizer, the dev extras), tried before any job.
    (
        "class_argument_as_a_string",
        "if 'base_optimizer' should be a class, write it {class: \"module:Class\"}",
        lambda c: c.update(
            optimizers={
                "sam": {
                    "class": "pytorch_optimizer:SAM",
                    "default_lr": 0.05,
                    "kwargs": {"base_optimizer": "torch.optim.SGD"},
                }
            }
        ),
    ),
    (
        "class_argument_not_importable",
        "optimizers.sam.kwargs.base_optimizer.class: cannot import 'torch.optim:SGDD'",
        lambda c: c.update(
            optimizers={
                "sam": {
                    "class": "pytorch_optimizer:SAM",
                    "default_lr": 0.05,
                    "kwargs": {"base_optimizer": {"class": "torch.optim:SGDD"}},
                }
            }
        ),
    ),
    (
        "keyword_a_kwargs_class_would_swallow",
        "optimizers.lion.kwargs.betaz: pytorch_optimizer:Lion takes no parameter 'betaz'",
        lambda c: c.update(
            optimizers={
                "lion": {
                    "class": "pytorch_optimizer:Lion",
                    "default_lr": 0.0001,
                    "kwargs": {"betaz": [0.9, 0.99]},
                }
            }
        ),
    ),
    (
        "keyword_the_base_optimizer_lacks",
        "optimizers.sam.kwargs.momentun: neither pytorch_optimizer:SAM nor torch.optim.sgd:SGD",
        lambda c: c.update(
            optimizers={
                "sam": {
                    "class": "pytorch_optimizer:SAM",
                    "default_lr": 0.05,
                    "kwargs": {"base_optimizer": {"class": "torch.optim:SGD"}, "momentun": 0.9},
                }
            }
        ),
    ),
]


def linear(c, study: dict) -> None:
    """A linear digits problem (hidden: []) and a study of it."""
    c["problems"]["digits_linear"] = {"dataset": "digits", "model": "mlp", "hidden": []}
    c["studies"]["linear"] = {"fixed": {"problem": "digits_linear"}, **study}


# Issue 24: paths, protocol values, factors and model shapes.
CASES += [
    (
        "extensions_path_missing",
        "extensions_path[0]: 'my_optimizers' does not exist; it is relative to the working "
        "directory",
        lambda c: c.update(extensions_path=["my_optimizers"]),
    ),
    (
        "extensions_path_typo",
        "extensions_path[0]: 'scirpts' does not exist (did you mean 'scripts'?); it is relative "
        "to the working directory",
        lambda c: c.update(extensions_path=["scirpts"]),
    ),
    (
        "extensions_path_is_a_file",
        "extensions_path[0]: 'workflow/Snakefile' is a file; list the folder that holds the module",
        lambda c: c.update(extensions_path=["workflow/Snakefile"]),
    ),
    (
        "lr_limits_inverted",
        "protocol.lr_limits: [10, 1e-05] must be [lowest, highest]; write [1e-05, 10]",
        lambda c: c["protocol"].update(lr_limits=[10.0, 0.00001]),
    ),
    (
        "study_grid_outside_lr_limits",
        "protocol.lr_limits: [0.001, 1] must contain every grid, but studies.optimization.lr_grid "
        "spans [0.0001, 0.01]",
        lambda c: (
            c["protocol"].update(lr_limits=[0.001, 1.0]),
            opt(c).update(lr_grid=[0.0001, 0.01]),
        ),
    ),
    (
        "target_as_percentage",
        "protocol.target_val_accuracy: 50 is greater than the maximum of 1 (an accuracy is a "
        "fraction: 50% is written 0.5)",
        lambda c: c["protocol"].update(target_val_accuracy=50),
    ),
    (
        "fixed_problem_not_defined",
        "studies.regularization.fixed.problem: unknown problem 'digits'; problems:",
        lambda c: reg(c)["fixed"].update(problem="digits"),
    ),
    (
        "problem_key_as_factor",
        "studies.optimization.factors.hidden: unknown key 'hidden'",
        lambda c: opt(c)["factors"].update(hidden=[[8], [16]]),
    ),
    (
        "problem_key_as_factor_hint",
        "('hidden' is a key of a problem, not a setting: define one problem per value under "
        "`problems` and vary `problem`)",
        lambda c: opt(c)["factors"].update(hidden=[[8], [16]]),
    ),
    (
        "depth_on_a_linear_model",
        "studies.linear: depth on problem 'digits_linear', a linear model (hidden: []), needs a "
        "width too",
        lambda c: linear(c, {"factors": {"depth": [1, 2]}}),
    ),
    (
        "width_on_a_linear_model",
        "studies.linear: width on problem 'digits_linear', a linear model (hidden: []), needs a "
        "depth too",
        lambda c: linear(c, {"factors": {"width": [8, 16]}}),
    ),
    (
        "kernel_on_a_2d_cnn",
        "problems.digits_cnn.kernel: kernel sizes apply to a 1-D CNN (signals), but 'digits' "
        "holds 1x8x8 images",
        lambda c: c["problems"]["digits_cnn"].update(kernel=[3, 3]),
    ),
    (
        "more_kernels_than_convolutions",
        "problems.signal_cnn.kernel: 3 kernel sizes [5, 5, 5] for 2 convolutions",
        lambda c: c["problems"].update(
            signal_cnn={
                "dataset": "mnist1d",
                "model": "cnn",
                "channels": [4, 8],
                "kernel": [5, 5, 5],
            }
        ),
    ),
]


def signal_problem(c, **mnist1d) -> None:
    """An MNIST-1D MLP problem in the problems study, with these generation arguments."""
    c["problems"]["signal_mlp"] = {"dataset": "mnist1d", "model": "mlp", "hidden": [16]}
    c["studies"]["problems"]["factors"]["problem"].append("signal_mlp")
    c.update(data={"mnist1d": mnist1d})


# Issue 24: sizes no machine holds, refused with the estimate and the limit.
CASES += [
    (
        "mlp_of_hundreds_of_gigabytes",
        "problems.digits_mlp: one run of study 'optimization' has a mlp of 20,007,700,010 "
        "parameters (hidden [100000, 100000, 100000]), about 320 GB with its gradients and "
        "optimizer state, more than the limit of 64 GB",
        lambda c: c["problems"]["digits_mlp"].update(hidden=[100000] * 3),
    ),
    (
        "mnist1d_of_terabytes",
        "data.mnist1d: generating 'mnist1d' takes about 24.0 TB (10,000,000 samples of 100,000 "
        "values as 8-byte floats, three copies), more than the limit of 64.0 GB",
        lambda c: signal_problem(c, num_samples=10_000_000, final_seq_length=100_000),
    ),
    (
        "run_epoch_s_overflows",
        "problems.digits_mlp.run_epoch_s: a train job of study 'optimization' (8 runs x 3 "
        "epochs x 1e+308 s) would be given inf minutes, more than the limit of 525,600",
        lambda c: c["problems"]["digits_mlp"].update(run_epoch_s=1e308),
    ),
    (
        "run_epoch_s_in_milliseconds",
        "problems.cancer_mlp.run_epoch_s: a train job of study 'problems' (8 runs x 3 epochs x "
        "5e+06 s) would be given 3e+06 minutes",
        lambda c: c["problems"]["cancer_mlp"].update(run_epoch_s=5e6),
    ),
    (
        "validation_part_smaller_than_the_classes",
        "data.validation_fraction: a stratified split of the 1,437 rows left after the test "
        "part of 'digits' takes 2 of them, leaving 1,435: each part needs a row of each of its "
        "10 classes; use data.validation_fraction between 0.00557 and 0.794",
        lambda c: c.update(data={"validation_fraction": 0.001}),
    ),
    (
        "mnist1d_too_few_samples",
        "data.validation_fraction: a stratified split of the 8 training rows of 'mnist1d' "
        "takes 2 of them, leaving 6: each part needs a row of each of its 10 classes, and 8 "
        "rows are too few for any fraction (raise data.mnist1d.num_samples)",
        lambda c: signal_problem(c, num_samples=10),
    ),
]

MODULES = "tests/workflow/bad_configs/modules"  # the user modules these cases name


def user_optimizer(c, target: str) -> None:
    c.update(extensions_path=[MODULES], optimizers={"mine": {"class": target, "default_lr": 0.1}})
    opt(c)["factors"]["optimizer"].append("mine")


def user_model(c, factory: str) -> None:
    c.update(extensions_path=[MODULES], models={"mine": {"factory": f"models:{factory}"}})
    c["problems"]["digits_mine"] = {"dataset": "digits", "model": "mine"}
    c["studies"]["problems"]["factors"]["problem"].append("digits_mine")


def user_data(c, loader: str) -> None:
    c.update(extensions_path=[MODULES], datasets={"mine": {"loader": f"loaders:{loader}"}})
    c["problems"]["mine_mlp"] = {"dataset": "mine", "model": "mlp"}
    c["studies"]["problems"]["factors"]["problem"].append("mine_mlp")


# Issue 24: user modules that misbehave at import, models and data that do not fit.
LOADER = "datasets.mine.loader: dataset 'mine': "
CASES += [
    (
        "module_exits_at_import",
        "ExtensionError: the module exits while imported (SystemExit: 'usage: "
        "script_module.py DATA OUT')",
        lambda c: user_optimizer(c, "script_module:Scripted"),
    ),
    (
        "module_parses_the_command_line_at_import",
        "ExtensionError: the module exits while imported (SystemExit: 2; it printed: 'usage: "
        "argv_module.py [-h] data",
        lambda c: user_optimizer(c, "argv_module:Parsed"),
    ),
    (
        "stacked_rule_with_non_finite_updates",
        "optimizers.mine.class: stacked_nan:ZeroDivide (a trial of 3 steps on a stack of 3 runs "
        "at rates 0.001, 0.01 and 0.1, gradients of N(0, 1)) turns the parameters non-finite",
        lambda c: user_optimizer(c, "stacked_nan:ZeroDivide"),
    ),
    (
        "model_with_too_many_logits",
        "models.mine.factory: models:too_many_logits (problem 'digits_mine', data set 'digits', "
        "activation relu) maps a batch [2, 1, 8, 8] to shape [2, 20], not the logits [2, 10]",
        lambda c: user_model(c, "too_many_logits"),
    ),
    (
        "model_factory_returning_a_class",
        "returned type, not a torch.nn.Module",
        lambda c: user_model(c, "not_a_module"),
    ),
    (
        "data_non_finite",
        LOADER + "features hold NaN or infinite values",
        lambda c: user_data(c, "non_finite"),
    ),
    (
        "data_label_far_out_of_range",
        LOADER + "labels run to 1000 but only 4 classes occur",
        lambda c: user_data(c, "labels_out_of_range"),
    ),
    (
        "data_label_gaps",
        LOADER + "labels run to 6 but only 3 classes occur (never 1, 2, 4, 5): the model would "
        "get 7 outputs; number the classes 0..2",
        lambda c: user_data(c, "label_gaps"),
    ),
    (
        "data_one_class",
        LOADER + "every label is 0: one class, whose accuracy is 1.0 whatever the model learns",
        lambda c: user_data(c, "one_class"),
    ),
    (
        "data_lengths_differ",
        LOADER + "features (60, 4) and labels (59,) must have the same, non-zero number of rows",
        lambda c: user_data(c, "different_lengths"),
    ),
    (
        "data_text_features",
        LOADER + "features must be numbers, got <U1 (such as 'a')",
        lambda c: user_data(c, "text_features"),
    ),
    (
        "data_float_labels",
        LOADER + "labels must be integers 0..classes-1, got float64 from 0.5 to 2.5",
        lambda c: user_data(c, "float_labels"),
    ),
    (
        "cnn_on_a_user_table",
        "problems.mine_cnn.model: a CNN needs images; data set 'mine' has 4 features per sample",
        lambda c: (
            user_data(c, "fits"),
            c["problems"].update(mine_cnn={"dataset": "mine", "model": "cnn"}),
            c["studies"]["problems"]["factors"]["problem"].append("mine_cnn"),
        ),
    ),
    (
        "data_too_few_rows_for_a_stratified_split",
        "data.test_fraction: a stratified split of the 12 rows of 'mine' takes 3 of them, "
        "leaving 9: each part needs a row of each of its 6 classes, and 12 rows are too few",
        lambda c: user_data(c, "too_few_rows"),
    ),
]
# The training protocol (issue 22): schedules, budget marks, training subsets.
CASES += [
    (
        "unknown_schedule",
        "defaults.schedule: 'linear' is not one of ['constant', 'cosine', 'warmup_cosine', 'step']",
        lambda c: c["defaults"].update(schedule="linear"),
    ),
    (
        "marks_as_a_factor",
        "studies.optimization.factors.marks: unknown key 'marks'; allowed keys: activation",
        lambda c: opt(c)["factors"].update(marks=[1, 2]),
    ),
    (
        "train_size_beyond_the_training_split",
        "problems.digits_mlp.train_size: 5,000 is more than the 1,077 rows of the training "
        "split of 'digits'",
        lambda c: c["problems"]["digits_mlp"].update(train_size=5000),
    ),
    (
        "train_size_below_the_classes",
        "problems.digits_mlp.train_size: 5 rows cannot hold one of each of the 10 classes",
        lambda c: c["problems"]["digits_mlp"].update(train_size=5),
    ),
]
# Typed with --config on config/smoke.yaml: (name, expect, entry).
COMMAND_LINE = [
    ("config_nan_max_runs", "max_runs: nan is not a finite number", "max_runs=nan"),
    ("config_inf_seeds_per_job", "seeds_per_job: inf is not a finite number", "seeds_per_job=inf"),
    (
        "config_float_seeds_per_job",
        "seeds_per_job: 2.0 is not of type 'integer' (write 2)",
        "seeds_per_job=2.0",
    ),
    ("config_gpu_model_path", "gpu_model: '../x' does not match", "gpu_model=../x"),
    (
        "config_data_root_is_a_file",
        "data.root: 'workflow/Snakefile' is a file",
        "data={root: workflow/Snakefile}",
    ),
    (
        "config_number_as_study_name",
        "studies: name '2' must start with a letter",
        "studies={2: {factors: {optimizer: [adam]}}}",
    ),
    (
        "config_cnn_on_a_table",
        "problems.cancer_mlp.dataset: 'breast_cancer' is not one of",
        "problems={cancer_mlp: {model: cnn}}",
    ),
]


def duplicated(text: str, anchor: str, line: str) -> str:
    """`text` with `line` inserted after the line `anchor`: a key given twice."""
    lines = text.splitlines(keepends=True)
    at = next(i for i, x in enumerate(lines) if x.rstrip() == anchor) + 1
    return "".join([*lines[:at], line + "\n", *lines[at:]])


SMOKE = (HERE.parents[2] / "config" / "smoke.yaml").read_text()
RAW = [
    (
        "yaml_syntax_error",
        "Config file is not valid JSON or YAML",
        "protocol:\n  lr_grid: [0.1\nstudies: {}\n",
    ),
    (
        "not_a_mapping",
        "Config file must be given as JSON or YAML with keys at top level",
        "- protocol\n- studies\n",
    ),
]
# Duplicate keys, in the smoke config as written (the line numbers count the expect line).
RAW += [
    (
        "duplicate_key_epochs",
        "key 'epochs' is given twice, on lines 23 and 24",
        duplicated(SMOKE, "  epochs: 3", "  epochs: 30"),
    ),
    (
        "duplicate_top_key",
        "key 'problems' is given twice, on lines 10 and 46",
        SMOKE + "problems:\n  digits_mlp: {dataset: digits, model: mlp, hidden: [32]}\n",
    ),
]


def laughs(levels: int = 9, indent: str = "") -> str:
    """YAML aliases nested ten times a level: a few lines that stand for 10^levels values."""
    lines = [f"{indent}l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


# Issue 24: YAML that never finishes loading once its aliases are expanded.
RAW += [
    (
        "billion_laughs_under_an_unknown_key",
        "line 51, laughs.l4: holds more than 100,000 values once its aliases (*name) are expanded",
        SMOKE + "laughs:\n" + laughs(indent="  "),
    ),
    (
        "billion_laughs_in_kwargs",
        "line 55, optimizers.lion.kwargs.l4: holds more than 100,000 values once its aliases",
        SMOKE
        + "optimizers:\n  lion:\n    class: torch.optim:SGD\n    default_lr: 0.1\n"
        + "    kwargs:\n"
        + laughs(indent="      "),
    ),
    (
        "alias_loop",
        "line 46, loop[1]: an alias (*name) refers to a value that contains it (a loop)",
        SMOKE + "loop: &loop [1, *loop]\n",
    ),
    (
        "nested_too_deep",
        "values nest more than 32 levels deep",
        SMOKE + "deep: " + "[" * 40 + "]" * 40 + "\n",
    ),
]


def main() -> None:
    for old in HERE.glob("*.yaml"):
        old.unlink()
    for i, (name, expect, edit) in enumerate(CASES, 1):
        config = copy.deepcopy(BASE)
        edit(config)
        text = yaml.safe_dump(config, sort_keys=False)
        (HERE / f"{i:02d}_{name}.yaml").write_text(f"# expect: {expect}\n{text}")
    for i, (name, expect, text) in enumerate(RAW, len(CASES) + 1):
        (HERE / f"{i:02d}_{name}.yaml").write_text(f"# expect: {expect}\n{text}")
    for i, (name, expect, entry) in enumerate(COMMAND_LINE, len(CASES) + len(RAW) + 1):
        text = f"# expect: {expect}\n# config: {entry}\n{SMOKE}"
        (HERE / f"{i:02d}_{name}.yaml").write_text(text)


if __name__ == "__main__":
    main()

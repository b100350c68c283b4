# One tensor file per dataset, shared by every train job. The raw files under data.root
# are deliberately not inputs: with data.download they do not exist before this job creates
# them, and their times change with every copy or download while their content, checked by
# torchvision (CIFAR-10's md5) and recorded as SHA-256 in the metadata, does not. After
# replacing raw files, rerun with --forcerun prepare_data.
rule prepare_data:
    """Read a dataset, split it once (train/validation/test) and save it as tensors."""
    input:
        code=code("prepare_data.py"),
    output:
        data=f"{RESULTS}/data/{{dataset}}.pt",
        meta=f"{RESULTS}/data/{{dataset}}.json",
    log:
        "logs/prepare_data/{dataset}.log",
    wildcard_constraints:
        dataset="|".join(BUILTIN_DATASETS),
    # Before any train job that is ready (theirs is below 1): a data set prepared late holds
    # back its problem's train jobs, which then run after all others, some of them alone.
    priority: 1
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]["prepare_data"]
    params:
        split_seed=config["data"]["split_seed"],
        validation_fraction=config["data"]["validation_fraction"],
        test_fraction=config["data"]["test_fraction"],
        generation=generation_args,
    script:
        "../../scripts/prepare_data.py"


# A data set of the user's own (config: datasets): its module's files are inputs and its
# loader and arguments params, so editing either reprepares exactly this set.
rule prepare_user_data:
    """Load a data set of the user's own, split and scale it like the built-in sets."""
    input:
        code=code("prepare_user_data.py"),
        user_code=get_dataset_code,
    output:
        data=f"{RESULTS}/data/{{dataset}}.pt",
        meta=f"{RESULTS}/data/{{dataset}}.json",
    log:
        "logs/prepare_data/{dataset}.log",
    wildcard_constraints:
        dataset="|".join(USER_DATASETS),
    priority: 1  # as prepare_data's
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]["prepare_data"]
    params:
        split_seed=config["data"]["split_seed"],
        validation_fraction=config["data"]["validation_fraction"],
        test_fraction=config["data"]["test_fraction"],
        loader=get_dataset_loader,
    script:
        "../../scripts/prepare_user_data.py"

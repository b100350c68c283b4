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

rule prepare_data:
    input:
        code=code("prepare_data.py"),
    output:
        data=f"{RESULTS}/data/{{dataset}}.pt",
        meta=f"{RESULTS}/data/{{dataset}}.json",
    log:
        "logs/prepare_data/{dataset}.log",
    conda:
        "../../envs/torch.yaml"
    params:
        split_seed=config["dataset"]["split_seed"],
        validation_fraction=config["dataset"]["validation_fraction"],
        test_fraction=config["dataset"]["test_fraction"],
    script:
        "../../scripts/prepare_data.py"

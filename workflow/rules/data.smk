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
    threads: config["threads"]["prepare_data"]
    params:
        split_seed=config["data"]["split_seed"],
        validation_fraction=config["data"]["validation_fraction"],
        test_fraction=config["data"]["test_fraction"],
    script:
        "../../scripts/prepare_data.py"

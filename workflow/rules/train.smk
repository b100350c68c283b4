rule train:
    input:
        data=f"{RESULTS}/data/{DATASET}.pt",
        code=code("train.py"),
    output:
        directory(f"{RESULTS}/studies/{{study}}/runs/{{combination}}/seeds-{{block}}"),
    log:
        "logs/train/{study}/{combination}/seeds-{block}.log",
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]["train"]
    params:
        job=get_train_job,
        device=config["device"],
    script:
        "../../scripts/train.py"

rule train:
    """Train one block of seeds of one cell: every grid rate (tuning), then both protocols."""
    input:
        unpack(get_train_inputs),
        code=code("train.py"),
    output:
        directory(f"{RESULTS}/{RUN_DIR}"),
    log:
        "logs/train/{study}/{phase}/{combination}/seeds-{block}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{study}}/{{phase}}/{{combination}}/seeds-{{block}}.tsv"
    # Largest first: the cores end on short jobs (optreg.study.flops.train_priorities).
    priority: get_train_priority
    group:
        "train"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]["train"]
    resources:
        **get_train_resources(),
    params:
        job=get_train_job,
        device=config["device"],
        # The installed versions of the packages the cell's own code comes from: a change
        # (an upgrade of pytorch-optimizer) reruns exactly the cells that use it.
        packages=get_train_packages,
    script:
        "../../scripts/train.py"


# A finished train job keeps its checkpoint until Snakemake is done with it (see
# optreg.training.checkpoint.remove_finished); the checkpoints of jobs whose results exist go now.
onsuccess:
    remove_finished_checkpoints()


onerror:
    remove_finished_checkpoints()

"""Each CNN problem against its data set's sample shape, before any job: a built-in set's
from its registry entry (`optreg.data.registry`), a user set's from what its loader
returned (`optreg.study.extensions`)."""

from __future__ import annotations

from optreg.data.registry import dataset_entries


def check_shapes(config: dict, shapes: dict | None = None) -> list[str]:
    """Each CNN problem against its data set's image size, known without loading the data;
    with `shapes` (data set -> one sample's shape, a user set's as its loader returned it),
    the problems on those sets only."""
    from optreg.data.shapes import conv1d_length

    entries = dataset_entries(config)
    problems = []
    for name, problem in config["problems"].items():
        if problem["model"] != "cnn" or (shapes is not None and problem["dataset"] not in shapes):
            continue
        kernel, n = problem.get("kernel") or [], len(problem["channels"])
        if len(kernel) > n:
            problems.append(
                f"problems.{name}.kernel: {len(kernel)} kernel sizes {kernel} for {n} "
                f"convolutions (channels {problem['channels']}); give at most one per convolution"
            )
            continue
        entry = entries[problem["dataset"]]
        if shapes is not None:
            shape = tuple(shapes[problem["dataset"]])
        else:
            shape = entry.shape(entry.generation_args(config))
        if shape is None:
            continue  # a data set the registry has no shape of: its model checks it in the job
        if kernel and len(shape) == 3:
            problems.append(
                f"problems.{name}.kernel: kernel sizes apply to a 1-D CNN (signals), but "
                f"'{problem['dataset']}' holds {'x'.join(map(str, shape))} images, whose 2-D "
                "CNN uses 3x3 kernels; remove `kernel`"
            )
            continue
        if len(shape) == 2:  # signals [channels, length]: stride-2 convolutions
            kernels = [*kernel, *[3] * n][:n]
            if conv1d_length(shape[1], kernels) < 1:
                setting = entry.shape_setting(1)
                longer = f" or a longer signal ({setting})" if setting else ""
                problems.append(
                    f"problems.{name}.channels: {n} stride-2 convolutions with kernels "
                    f"{kernels} shrink the length-{shape[1]} signals of '{problem['dataset']}' "
                    f"below one sample; use fewer convolutions{longer}"
                )
            continue
        if len(shape) != 3:
            problems.append(
                f"problems.{name}.model: a CNN needs images; data set '{problem['dataset']}' "
                f"has {shape[0]} features per sample"
            )
            continue
        _, h, w = shape
        fit = 0
        while min(h, w) >= 2:
            fit, h, w = fit + 1, h // 2, w // 2
        if len(problem["channels"]) > fit:
            problems.append(
                f"problems.{name}.channels: {len(problem['channels'])} convolution blocks "
                f"(each pools 2x2) do not fit the {'x'.join(map(str, shape))} images of "
                f"'{problem['dataset']}'; at most {fit}"
            )
    return problems

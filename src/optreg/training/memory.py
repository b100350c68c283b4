"""How many runs one stack may hold: the memory a run adds, and the cells that train one run
at a time (a `torch.optim` optimizer, or a model `torch.func` cannot stack)."""

from __future__ import annotations

import torch

from optreg.data.prepared import Prepared
from optreg.extensions import load, optimizer_kind
from optreg.settings import Settings
from optreg.training.loop import _cross_entropy
from optreg.training.models import build_model

# Share of the free memory that one stack's training may take: the rest is for the data,
# evaluation and whatever else runs on the machine.
STACK_SHARE = 0.5


def free_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on `device`: CUDA's free memory, or the system's available
    memory (Linux's MemAvailable); None where neither can be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def bytes_per_run(data: Prepared, settings: Settings | dict, device: torch.device) -> int:
    """The memory one more run adds to a stack's training step, measured on a one-run stack.

    The tensors autograd keeps for the backward pass of one batch, twice (the backward pass
    makes gradients of about their size), plus the parameters, their gradients and two
    optimizer states. Measured rather than modelled, so it holds for every model.
    """
    settings = Settings.of(settings)
    model = build_model(settings.model, data.meta, settings.activation, [0]).to(device)
    batch = torch.arange(min(settings.batch_size, len(data.y["train"])))
    xb, yb = data.x["train"][batch].to(device)[None], data.y["train"][batch].to(device)[None]
    saved: dict[int, int] = {}  # storage address -> bytes: views of one storage count once

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        _cross_entropy(model(xb), yb)
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return 2 * sum(saved.values()) + 4 * parameters


def max_stack(
    data: Prepared, settings: Settings | dict, device: torch.device, free_bytes: int | None = None
) -> int | None:
    """The most runs one stack may hold: their training takes at most STACK_SHARE of the free
    memory (`free_bytes`, else `free_memory`); at least 1; None when nothing limits it.

    Nothing else limits stacking: no setting couples the runs of a stack (optimizers and
    penalties act per run, each run has its own data order), so a job too large for the
    memory trains its runs in consecutive stacks with the same results.
    """
    free = free_memory(device) if free_bytes is None else free_bytes
    if free is None:
        return None
    return max(1, int(STACK_SHARE * free) // bytes_per_run(data, settings, device))


def per_run(settings: Settings | dict, meta: dict) -> bool:
    """Whether a cell's runs train one at a time (a torch.optim optimizer, or a model that
    torch.func cannot stack on data set `meta`), rather than stacked."""
    settings = Settings.of(settings)
    spec = settings.optimizer_spec
    if spec and optimizer_kind(load(spec.target)) == "torch":
        return True
    if settings.model.factory is not None:
        from optreg.training.funcmodel import stackable

        return not stackable(settings.model.to_dict(), meta)
    return False


def stack_limit(settings: Settings | dict, meta: dict, limit: int | None) -> int | None:
    """The most runs a stack of this cell may hold: 1 for per-run cells, else `limit`."""
    return 1 if per_run(settings, meta) else limit

"""A user's `torch.nn.Module` as a stacked model, through `torch.func`.

Each run builds its own module from the factory, with the global RNG seeded from
the run's seed (`derived_seed(seed, "init")`), so a run's initialization does not
depend on its stack mates. `torch.func.stack_module_state` stacks the runs'
parameters into leaves with a leading run dimension, and `vmap` over
`functional_call` evaluates them together. When `vmap` cannot run the module
(random layers such as dropout, data-dependent control flow, operations
without a batching rule), `stackable` says so and the runs
train one at a time: the same wrapper with a stack of one, called directly.

Either way the model offers what the training loop uses of a built-in one:
parameters with a leading run dimension, `weights` (parameters with two or more
dimensions per run: penalties act on them) and `biases` (the rest), `stack`,
`keep(mask)`. The module runs in training mode while gradients are on and in
evaluation mode otherwise (the loop evaluates under `torch.no_grad`).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
from functools import cache

import torch
from torch import nn

from optreg.training.seeds import derived_seed


def _build_one(spec: dict, meta: dict, activation: str, seed: int) -> nn.Module:
    from optreg.extensions import ExtensionError, load

    factory = load(spec["factory"])
    arguments = factory_arguments(factory, meta, activation, spec["kwargs"])
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(derived_seed(seed, "init"))
        module = factory(**arguments)
    finally:
        torch.random.set_rng_state(state)  # a factory must not change what follows it
    if not isinstance(module, nn.Module):
        raise ExtensionError(
            f"model factory {spec['factory']} returned {type(module).__name__}, not a "
            "torch.nn.Module"
        )
    return module


class FuncStacked(nn.Module):
    """S user modules stacked over runs: `vmap` of `functional_call` (S = 1: called
    directly, the one-run-at-a-time path)."""

    def __init__(self, modules: list[nn.Module], input_shape, vectorize: bool = True, seeds=None):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.vectorize = vectorize
        # Random layers (dropout) of runs trained one at a time draw from a generator state
        # of the run's own, kept between steps: a run's draws depend on its seed alone.
        seeds = range(len(modules)) if seeds is None else seeds
        self.random_seeds = [derived_seed(s, "random") for s in seeds]
        self.random_states: list | None = None
        params, buffers = torch.func.stack_module_state(modules)
        self.names = list(params)
        self.buffer_names = list(buffers)
        # The skeleton: modules[0]'s structure; functional_call swaps in each run's tensors.
        # Kept out of the module tree (a list), so that `.to(device)` leaves it on "meta".
        self._skeleton = [copy.deepcopy(modules[0]).to("meta")]
        self.stacked = nn.ParameterList(nn.Parameter(params[n].detach()) for n in self.names)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer_{i}", buffers[name])

    @property
    def stack(self) -> int:
        return self.stacked[0].shape[0]

    @property
    def weights(self) -> list[nn.Parameter]:
        return [p for p in self.stacked if p.dim() >= 3]

    @property
    def biases(self) -> list[nn.Parameter]:
        return [p for p in self.stacked if p.dim() < 3]

    def _buffers_now(self) -> list[torch.Tensor]:
        return [getattr(self, f"buffer_{i}") for i in range(len(self.buffer_names))]

    def _call(self, params, buffers, x):
        base = self._skeleton[0]
        base.train(torch.is_grad_enabled())
        tensors = {
            **dict(zip(self.names, params, strict=True)),
            **dict(zip(self.buffer_names, buffers, strict=True)),
        }
        return torch.func.functional_call(base, tensors, (x,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [S, B, classes] for flattened inputs [S, B, features] (or [B, features])."""
        if x.dim() == 2:
            x = x.expand(self.stack, -1, -1)
        x = x.reshape(*x.shape[:2], *self.input_shape)
        params, buffers = list(self.stacked), self._buffers_now()
        if not self.vectorize:
            outputs = []
            for s in range(self.stack):
                with self._random_state(s, x.device):
                    outputs.append(
                        self._call([p[s] for p in params], [b[s] for b in buffers], x[s])
                    )
            return torch.stack(outputs)
        return torch.func.vmap(self._call, randomness="error")(params, buffers, x)

    @contextlib.contextmanager
    def _random_state(self, slot: int, device: torch.device):
        cuda = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            if self.random_states is None:
                self.random_states = []
                for seed in self.random_seeds:
                    torch.manual_seed(seed)
                    self.random_states.append(self._get_state(device))
            self._set_state(self.random_states[slot], device)
            yield
            self.random_states[slot] = self._get_state(device)

    @staticmethod
    def _get_state(device):
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    @staticmethod
    def _set_state(state, device) -> None:
        torch.set_rng_state(state[0])
        if device.type == "cuda":
            torch.cuda.set_rng_state(state[1], device)

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the runs where `mask` is False (new leaves: autograd remembers shapes)."""
        kept = mask.tolist()
        self.random_seeds = [s for s, k in zip(self.random_seeds, kept, strict=True) if k]
        if self.random_states is not None:
            self.random_states = [s for s, k in zip(self.random_states, kept, strict=True) if k]
        self.stacked = nn.ParameterList(nn.Parameter(p.detach()[mask]) for p in self.stacked)
        for i in range(len(self.buffer_names)):
            name = f"buffer_{i}"
            self.register_buffer(name, getattr(self, name)[mask])


def _key(value: dict) -> str:
    return json.dumps(value, sort_keys=True)


@cache
def _stackable(spec_json: str, meta_json: str) -> bool:
    spec, meta = json.loads(spec_json), json.loads(meta_json)
    modules = [_build_one(spec, meta, "relu", s) for s in (0, 1)]
    model = FuncStacked(modules, meta["input_shape"], vectorize=True)
    x = torch.zeros(2, 2, meta["n_features"])
    try:
        model(x).sum().backward()
        with torch.no_grad():
            model(x)
    except Exception:  # vmap refuses the module: it trains one run at a time
        return False
    return True


def stackable(spec: dict, meta: dict | None = None) -> bool:
    """Whether `vmap` runs the user model `spec` (tried once per process on a tiny batch).

    Without `meta` (the data set's), the entry's `stack` setting decides: `loop` never."""
    if spec.get("stack") == "loop":
        return False
    if meta is None:
        return True
    return _stackable(_key(spec), _key(_shape_of(meta)))


def _shape_of(meta: dict) -> dict:
    return {k: meta[k] for k in ("input_shape", "n_features", "n_classes")}


def build_func_model(spec: dict, meta: dict, activation: str, seeds) -> FuncStacked:
    """The stacked user model of `spec` for `seeds` (vmap when `stackable`, else a loop)."""
    modules = [_build_one(spec, meta, activation, s) for s in seeds]
    vectorize = len(seeds) > 1 and stackable(spec, _shape_of(meta))
    return FuncStacked(modules, meta["input_shape"], vectorize=vectorize, seeds=seeds)


def factory_arguments(factory, meta: dict, activation: str, kwargs: dict) -> dict:
    """The keyword arguments a model factory accepts among `input_shape`, `n_features`,
    `n_classes` and `activation`, plus the entry's own `kwargs`."""
    offered = {
        "input_shape": tuple(meta["input_shape"]),
        "n_features": meta["n_features"],
        "n_classes": meta["n_classes"],
        "activation": activation,
    }
    parameters = inspect.signature(factory).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    chosen = {k: v for k, v in offered.items() if takes_all or k in parameters}
    return {**chosen, **kwargs}


def trial(spec: dict, input_shape, classes: int, activation: str) -> str | None:
    """What keeps a user model (`spec`: its factory and kwargs) from fitting a problem
    whose samples have `input_shape` and `classes` classes, found before any job: the
    factory must return a `torch.nn.Module` mapping a batch [B, *input_shape] to logits
    [B, classes] (more would train without a word, the extra outputs never a label's)."""
    import math

    input_shape = tuple(int(d) for d in input_shape)
    meta = {
        "input_shape": input_shape,
        "n_features": math.prod(input_shape),
        "n_classes": int(classes),
    }
    try:
        module = _build_one(spec, meta, activation, 0)
        module.eval()
        with torch.no_grad():
            out = module(torch.zeros(2, *input_shape))
    except (Exception, SystemExit) as exc:  # the user's to see, verbatim
        return (
            f"fails on a batch [2, {', '.join(map(str, input_shape))}]: {type(exc).__name__}: {exc}"
        )
    shape = tuple(getattr(out, "shape", ()))
    if not isinstance(out, torch.Tensor) or shape != (2, classes):
        got = f"shape {list(shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        return (
            f"maps a batch [2, {', '.join(map(str, input_shape))}] to {got}, not the logits "
            f"[2, {classes}] of its {classes} classes"
        )
    return None

"""Models: an MLP and small 2-D and 1-D CNNs whose parameters are stacked over runs.

A stacked model holds S independent networks, one per run, as parameters with
a leading run dimension, and evaluates them together (batched matrix products;
grouped convolutions). Slices never mix: slice s sees only its own weights and
its own inputs, so training the stack equals training S networks one at a
time, at a fraction of the per-step overhead. S = 1 is a plain network. Each
slice is initialized from its run's seed alone (Glorot-uniform weights, zero
biases, the Keras default the original study used), so a run's initialization
does not depend on its stack mates, and runs that share a seed share it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from optreg.extensions import load
from optreg.settings import ModelSpec
from optreg.training.registry import MODELS
from optreg.training.seeds import derived_seed

# In place: each applies to a fresh product or pooling output that no backward pass needs.
ACTIVATIONS = {"relu": torch.relu_, "sigmoid": torch.sigmoid_, "tanh": torch.tanh_}


# Each activation's backward from its output: the kernels autograd runs for it.
_ACTIVATION_BACKWARD = {
    "relu": lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0),
    "sigmoid": torch.ops.aten.sigmoid_backward,
    "tanh": torch.ops.aten.tanh_backward,
}


def _glorot_(weights, seeds) -> None:
    """Glorot-uniform init of stacked weights [S, ...], slice s from seeds[s] alone.

    Dense weights are stored [S, out, in] but drawn [in, out] (the order the values were
    always drawn in), so a run's initialization does not depend on the storage layout.
    """
    with torch.no_grad():
        for s, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(derived_seed(seed, "init"))
            for w in weights:
                fan_in, fan_out = w.fan
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                dense = getattr(w, "dense", False)
                shape = (fan_in, fan_out) if dense else w.shape[1:]
                value = torch.rand(shape, generator=gen) * 2 * bound - bound
                w[s].copy_(value.T if dense else value)


def _weight(shape, fan) -> nn.Parameter:
    w = nn.Parameter(torch.empty(shape))
    w.fan = fan
    return w


def _dense_weights(stack: int, sizes) -> list[nn.Parameter]:
    """Stacked dense layers through `sizes`: weights [S, out, in] (nn.Linear's layout)."""
    weights = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        w = _weight((stack, b, a), (a, b))
        w.dense = True
        weights.append(w)
    return weights


def _dense_biases(stack: int, sizes) -> list[nn.Parameter]:
    """One bias [S, out, 1] per dense layer through `sizes`."""
    return [nn.Parameter(torch.zeros(stack, b, 1)) for b in sizes[1:]]


def dense_forward(x: torch.Tensor, weights, biases, activation) -> torch.Tensor:
    """Stacked dense layers on features [S, B, F]: logits [S, B, classes].

    Computed feature-major, h [S, out, B] = W [S, out, in] @ h [S, in, B] + b: with a batch
    of 64 and 10 classes, the usual [S, B, in] @ [S, in, out] runs the last layer's product
    and its gradients several times slower on a CPU (an output 10 wide), and the logits come
    out [S, classes, B], the layout cross-entropy wants. The result is that tensor's
    transposed view.
    """
    h = x.transpose(1, 2)
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = torch.baddbmm(b, w, h)
        if i < last:
            h = activation(h)
    return h.transpose(1, 2)


class Stacked(nn.Module):
    """Common parts of stacked models: weights, biases, the stack size, dropping slices."""

    weights: nn.ParameterList
    biases: nn.ParameterList

    @property
    def stack(self) -> int:
        return self.weights[0].shape[0]

    def _set_parameters(self, stack, convs, channels, sizes, seeds) -> None:
        """A CNN's parameters: its convolution weights, then dense layers through `sizes`
        (flattened features, ..., classes); one bias per convolution channel and layer;
        Glorot-initialized per seed."""
        self.weights = nn.ParameterList([*convs, *_dense_weights(stack, sizes)])
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.zeros(stack, k)) for k in channels] + _dense_biases(stack, sizes)
        )
        _glorot_(self.weights, seeds)

    def layers(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """The weights and biases as plain lists, kept until `keep` replaces them: indexing
        a ParameterList costs microseconds a time, a tenth of a one-run training step."""
        cached = self.__dict__.get("_layers")
        if cached is None:
            cached = self.__dict__["_layers"] = (list(self.weights), list(self.biases))
        return cached

    def _apply(self, fn, *args, **kwargs):
        self.__dict__.pop("_layers", None)  # `.to()` may give new parameters
        return super()._apply(fn, *args, **kwargs)

    def _set_activation(self, activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        self.activation = ACTIVATIONS[activation]

    def _runs_as_channels(self, x: torch.Tensor) -> torch.Tensor:
        """A CNN's flattened inputs [S, B, C*...] (or [B, C*...], shared) as one batch whose
        channels are the runs' channels side by side, [B, S*C, ...]: the runs become the
        groups of a grouped convolution (groups=S)."""
        stack = self.stack
        if x.dim() == 2:
            x = x.expand(stack, -1, -1)
        batch = x.shape[1]
        x = x.reshape(stack, batch, *self.input_shape).transpose(0, 1)
        return x.reshape(batch, stack * self.input_shape[0], *self.input_shape[1:])

    def _dense_head(self, x: torch.Tensor, first: int) -> torch.Tensor:
        """The dense layers from parameter `first` on, on features [S, B, F]."""
        weights, biases = self.layers()
        return dense_forward(x, weights[first:], biases[first:], self.activation)

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the slices where `mask` is False (diverged runs).

        The parameters are replaced by new ones: autograd remembers a leaf's shape,
        so shrinking a parameter in place would break the next backward pass.
        """
        kept = []
        for w in self.weights:
            new = nn.Parameter(w.detach()[mask])
            new.fan = w.fan
            new.dense = getattr(w, "dense", False)
            kept.append(new)
        self.weights = nn.ParameterList(kept)
        self.biases = nn.ParameterList(nn.Parameter(b.detach()[mask]) for b in self.biases)
        self.__dict__.pop("_layers", None)


class StackedMLP(Stacked):
    """S independent MLPs: input -> hidden layers with `activation` -> logits."""

    def __init__(self, in_features: int, hidden: list[int], n_classes: int, activation: str, seeds):
        super().__init__()
        self._set_activation(activation)
        self.activation_backward = _ACTIVATION_BACKWARD[activation]
        sizes = [in_features, *hidden, n_classes]
        stack = len(seeds)
        self.weights = nn.ParameterList(_dense_weights(stack, sizes))
        self.biases = nn.ParameterList(_dense_biases(stack, sizes))
        _glorot_(self.weights, seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [S, B, classes] for inputs [S, B, features] (or [B, features], shared)."""
        if x.dim() == 2:
            x = x.expand(self.stack, -1, -1)
        return dense_forward(x, *self.layers(), self.activation)

    @torch.no_grad()
    def loss_and_gradients(self, x: torch.Tensor, y: torch.Tensor):
        """One training batch, forward and backward by hand: the per-sample cross-entropy
        [S, B] and predicted classes [S, B] of inputs [S, B, features] and labels [S, B],
        with each parameter's `.grad` set to the gradient of its run's mean loss.

        The same kernels autograd would run, without its graph: for a small MLP the
        engine's bookkeeping costs as much as the arithmetic (a quarter of a 21-run step
        at one hidden layer of 100). tests/test_train.py checks it against autograd.
        """
        weights, biases = self.layers()
        h = x.transpose(1, 2)
        inputs = []  # each layer's input [S, in, B]
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            inputs.append(h)
            h = torch.baddbmm(b, w, h)
            if i < last:
                h = self.activation(h)
        predicted = h.max(1).indices
        log_p = torch.log_softmax(h, 1)
        target = y[:, None, :]
        losses = log_p.gather(1, target).neg_().squeeze(1)
        # d(mean loss)/d(logits) = (softmax - one-hot) / B
        grad = log_p.exp_()
        grad.scatter_(1, target, grad.gather(1, target) - 1)
        grad.mul_(1.0 / y.shape[1])
        for i in range(last, -1, -1):
            w, b = weights[i], biases[i]
            w.grad = torch.bmm(grad, inputs[i].transpose(1, 2))
            b.grad = grad.sum(2, keepdim=True)
            if i:
                grad = self.activation_backward(torch.bmm(w.transpose(1, 2), grad), inputs[i])
        return losses, predicted


class StackedCNN(Stacked):
    """S independent small CNNs in the spirit of DeepOBS `2c2d` / `3c3d`: [3x3 conv,
    activation, 2x2 max-pool] per entry of `channels`, then a dense layer with `activation`
    per entry of `dense` (none by default), then a linear layer to the logits."""

    def __init__(
        self, input_shape, channels: list[int], n_classes: int, activation: str, seeds, dense=()
    ):
        super().__init__()
        self._set_activation(activation)
        self.input_shape = tuple(input_shape)
        self.n_convs = len(channels)
        stack = len(seeds)
        c, h, w = self.input_shape
        convs = []
        for out in channels:
            if h < 2 or w < 2:
                raise ValueError(
                    f"{len(channels)} convolutions with 2x2 pooling shrink a "
                    f"{'x'.join(map(str, input_shape))} input below one pixel; use fewer channels"
                )
            convs.append(_weight((stack, out, c, 3, 3), (c * 9, out * 9)))
            c, h, w = out, h // 2, w // 2
        sizes = [c * h * w, *dense, n_classes]
        self._set_parameters(stack, convs, channels, sizes, seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [S, B, classes] for flattened inputs [S, B, C*H*W] (or [B, C*H*W], shared)."""
        stack, convs = self.stack, self.n_convs
        # Channels-last memory makes these grouped convolutions 2-3x faster on a CPU.
        x = self._runs_as_channels(x).contiguous(memory_format=torch.channels_last)
        batch = x.shape[0]
        weights, biases = self.layers()
        for w, b in zip(weights[:convs], biases[:convs], strict=True):
            x = F.conv2d(x, w.flatten(0, 1), b.flatten(), padding=1, groups=stack)
            # Pooling first: every activation here is non-decreasing, so it commutes with the
            # max, and it then runs on a quarter of the values.
            x = self.activation(F.max_pool2d(x, 2))
        x = x.reshape(batch, stack, -1).transpose(0, 1)
        return self._dense_head(x, convs)


class StackedCNN1d(Stacked):
    """S independent 1-D CNNs for signals [C, L] (MNIST-1D), in the spirit of the MNIST-1D
    paper's reference CNN: per entry of `channels`, a convolution with the matching entry of
    `kernels` (3 where not given), stride 2 and padding 1, then `activation`; then a dense
    layer with `activation` per entry of `dense`, then a linear layer to the logits."""

    def __init__(
        self, input_shape, channels: list[int], n_classes: int, activation: str, seeds,
        dense=(), kernels=(),
    ):  # fmt: skip
        super().__init__()
        self._set_activation(activation)
        if len(kernels) > len(channels):
            raise ValueError(f"{len(kernels)} kernel sizes for {len(channels)} convolutions")
        self.input_shape = tuple(input_shape)
        self.n_convs = len(channels)
        kernels = [*kernels, *[3] * (len(channels) - len(kernels))]
        self.kernels = kernels
        stack = len(seeds)
        c, length = self.input_shape
        convs = []
        for out, k in zip(channels, kernels, strict=True):
            length = (length + 2 - k) // 2 + 1
            if length < 1:
                raise ValueError(
                    f"{len(channels)} stride-2 convolutions with kernels {kernels} shrink a "
                    f"signal of length {input_shape[-1]} below one sample; use fewer channels"
                )
            convs.append(_weight((stack, out, c, k), (c * k, out * k)))
            c = out
        sizes = [c * length, *dense, n_classes]
        self._set_parameters(stack, convs, channels, sizes, seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [S, B, classes] for flattened inputs [S, B, C*L] (or [B, C*L], shared).

        Each convolution is one batched product per layer over the unfolded windows, the
        signal held [S, C, L, B] (the batch innermost, the MLP's feature-major layout):
        W [S, out, C*k] @ windows [S, C*k, L_out*B]. A window's k taps are k strided slices
        of the padded signal, each a run of whole batch rows, so unfolding is k block copies
        and its backward k strided additions; the last layer's output [S, C, L, B] is already
        the dense head's input [S, C*L, B]. Several times faster on a CPU than the grouped
        convolution (groups=S) with the same products.
        """
        stack, convs = self.stack, self.n_convs
        if x.dim() == 2:
            x = x.expand(stack, -1, -1)
        batch = x.shape[1]
        h = x.transpose(1, 2).reshape(stack, *self.input_shape, batch)  # [S, C, L, B]
        weights, biases = self.layers()
        for w, b, k in zip(weights[:convs], biases[:convs], self.kernels, strict=True):
            windows = _windows(h, k)  # [S, C*k, L_out, B]
            length = windows.shape[2]
            h = torch.baddbmm(b.unsqueeze(-1), w.flatten(2), windows.flatten(2))
            h = self.activation(h).view(stack, -1, length, batch)
        h = h.reshape(stack, -1, batch)  # [S, C*L, B]
        last = len(weights) - 1
        for i in range(convs, last + 1):
            h = torch.baddbmm(biases[i], weights[i], h)
            if i < last:
                h = self.activation(h)
        return h.transpose(1, 2)


def _windows(h: torch.Tensor, k: int) -> torch.Tensor:
    """The stride-2, padding-1 windows of signals h [S, C, L, B]: [S, C*k, L_out, B], tap j
    of output position t at row 2t + j - 1 of the signal (zero outside it)."""
    return _Windows.apply(h, k)


class _Windows(torch.autograd.Function):
    """`_windows` with its backward written out: k strided additions into one zeroed
    gradient (autograd's own, through the slices, zeroes and adds k whole signals)."""

    @staticmethod
    def forward(h: torch.Tensor, k: int) -> torch.Tensor:
        stack, channels, length, batch = h.shape
        out = (length + 2 - k) // 2 + 1
        windows = h.new_zeros(stack, channels, k, out, batch)
        for j in range(k):
            # Output t reads padded row 2t + j, signal row 2t + j - 1, where it exists.
            first = 1 if j == 0 else 0  # t = 0 would read row -1 (the padding)
            rows = range(2 * first + j - 1, length, 2)[: out - first]
            if len(rows):
                windows[:, :, j, first : first + len(rows)] = h[:, :, rows.start : rows.stop : 2]
        return windows.view(stack, channels * k, out, batch)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        h, k = inputs
        ctx.k, ctx.shape = k, h.shape

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        stack, channels, length, batch = ctx.shape
        k = ctx.k
        out = grad.shape[2]
        grad = grad.view(stack, channels, k, out, batch)
        result = grad.new_zeros(ctx.shape)
        for j in range(k):
            first = 1 if j == 0 else 0
            rows = range(2 * first + j - 1, length, 2)[: out - first]
            if len(rows):
                result[:, :, rows.start : rows.stop : 2] += grad[:, :, j, first : first + len(rows)]
        return result, None


def build_mlp(spec: ModelSpec, meta: dict, activation: str, seeds) -> StackedMLP:
    """The MLP of a problem (`spec.hidden`: its hidden widths) on a data set's features."""
    return StackedMLP(meta["n_features"], list(spec.hidden), meta["n_classes"], activation, seeds)


def build_cnn(spec: ModelSpec, meta: dict, activation: str, seeds) -> StackedCNN | StackedCNN1d:
    """The CNN of a problem (`spec`: channels, optional dense and, for signals, kernel): on
    signals [C, L] a 1-D CNN, on images [C, H, W] a 2-D one."""
    if len(meta["input_shape"]) == 2:
        return StackedCNN1d(
            meta["input_shape"],
            list(spec.channels),
            meta["n_classes"],
            activation,
            seeds,
            dense=spec.dense or (),
            kernels=spec.kernel or (),
        )
    if spec.kernel:
        raise ValueError("`kernel` sizes apply to 1-D CNNs (signals) only")
    return StackedCNN(
        meta["input_shape"],
        list(spec.channels),
        meta["n_classes"],
        activation,
        seeds,
        dense=spec.dense or (),
    )


def build_model(spec: ModelSpec | dict, meta: dict, activation: str, seeds) -> nn.Module:
    """The stacked model of a cell (`spec`: its settings' `model`), one slice per seed: a
    built-in one by its `optreg.training.registry.MODELS` entry, or the user's factory
    (`spec.factory`) stacked with `torch.func`."""
    spec = ModelSpec.of(spec)
    if spec.factory is not None:  # a user's model (config: models)
        from optreg.training.funcmodel import build_func_model

        return build_func_model(spec.to_dict(), meta, activation, seeds)
    if spec.model not in MODELS:
        raise ValueError(f"unknown model {spec.model!r}; known: {', '.join(MODELS)}")
    return load(MODELS[spec.model].target)(spec, meta, activation, seeds)

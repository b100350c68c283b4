"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), as a stacked rule.

The published update, per parameter, with gradient g and momentum m (zero at the start):

    c = beta1 * m + (1 - beta1) * g
    p = p - lr * (sign(c) + weight_decay * p)
    m = beta2 * m + (1 - beta2) * g

A stacked rule (docs/extending.md) receives every parameter with a leading run
dimension and one learning rate per run (`rates`, viewed to broadcast per parameter);
its state is one tensor per parameter from `self.buffer`, so the training loop can drop
diverged runs from it. Every operation here is elementwise, as the protocol asks.
"""

import torch

from optreg.training.optimizers import Optimizer


class Lion(Optimizer):
    def __init__(self, params, lr, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.weight_decay = weight_decay

    def update(self, params, grads, rates):
        m = self.buffer("exp_avg")
        if self.weight_decay:
            decay = torch._foreach_mul(rates, self.weight_decay)
            torch._foreach_addcmul_(params, params, decay, value=-1)
        c = torch._foreach_lerp(m, grads, 1 - self.beta1)
        torch._foreach_addcmul_(params, torch._foreach_sign(c), rates, value=-1)
        torch._foreach_lerp_(m, grads, 1 - self.beta2)

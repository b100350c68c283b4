"""A script turned module: its command-line code runs on import and exits."""

import sys

import torch


class Scripted(torch.optim.SGD):
    pass


if len(sys.argv) < 3:
    sys.exit("usage: script_module.py DATA OUT")

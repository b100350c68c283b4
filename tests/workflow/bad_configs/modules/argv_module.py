"""A module that parses the command line on import (argparse exits on arguments it lacks)."""

import argparse

import torch

parser = argparse.ArgumentParser()
parser.add_argument("data")
args = parser.parse_args()


class Parsed(torch.optim.SGD):
    pass

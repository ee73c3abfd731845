"""Model files as text, for tests that write a project to disk (torch-free: the text is not run here)."""

# The source of a model file whose depth a test sets (baselines, the CI recipe): the paper's plain
# Linear -> BatchNorm -> ReLU stack at width 64, whose GSC grows ~1.23x a layer.  4 layers are healthy,
# 30 a GL101 warning (GSC ~460), 33 the same warning with a GSC ~1.7x larger, 36 an error.
PLAIN_STACK_FILE = '''\
import torch.nn as nn


def build(depth={depth}, width=64):
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        layers += [linear, nn.BatchNorm1d(width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 10))
'''

"""Temporal Convolutional Network (Bai, Kolter & Koltun 2018) for sequential MNIST.

Pattern: a stack of ``TemporalBlock``s, each two dilated causal ``Conv1d``s wrapped in the legacy
``torch.nn.utils.weight_norm`` hook, each followed by ``Chomp1d`` (drops the right padding so the
convolution is causal), ReLU and Dropout; the block output is ``relu(net(x) + res)`` where ``res``
is the input or, when the channel count changes, a 1x1 ``downsample`` convolution. Dilation doubles
per level (1, 2, 4, ...). The sequential-MNIST task model reads the TCN output at the last time step
through a Linear layer and returns ``log_softmax`` over the ten classes (trained with ``nll_loss``).

Source: locuslab/TCN, ``TCN/tcn.py`` (``Chomp1d``, ``TemporalBlock``, ``TemporalConvNet``) and
``TCN/mnist_pixel/model.py`` (``TCN``); hyper-parameters from ``TCN/mnist_pixel/pmnist_test.py``
defaults: 1 input channel, sequence length 784, 8 levels of 25 channels (``--nhid 25 --levels 8``),
kernel size 7, dropout 0.05, 10 classes. Rewritten here with the same modules and forward.

Published init: ``TemporalBlock.init_weights`` draws ``conv1.weight``, ``conv2.weight`` and (when
present) ``downsample.weight`` from N(0, 0.01); everything else keeps PyTorch's defaults.

Known problem of the original: the N(0, 0.01) draw on ``conv1``/``conv2`` has no effect. After
``weight_norm`` the trained parameters are ``weight_g`` and ``weight_v`` and a forward pre-hook
recomputes ``weight = g * v / ||v||`` before every call, so the values written into ``.weight.data``
are overwritten on the first forward (locuslab/TCN issue #1, acknowledged by the authors). The
effective init of those convolutions is PyTorch's default (kaiming-uniform, a = sqrt(5)) with
``g = ||v||`` per output channel. Only the 1x1 ``downsample`` (the first block, 1 -> 25 channels)
really gets N(0, 0.01), which makes its shortcut almost zero at init. This file keeps that behaviour.

Expected linter verdict: the model trains with its published recipe (Adam, lr 2e-3, 20 epochs, about
99% on sequential MNIST), so no error is justified. The network is 17 weight layers deep with
residual blocks whose skips are identities (after the first block), so the gradient is well
conditioned. Since the default-gain convolutions shrink the branch signal, the skip dominates each
block; notes on the near-zero first shortcut or on ReLU dead units would be acceptable as info.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm


class Chomp1d(nn.Module):
    """Removes the last ``chomp_size`` time steps (the right half of the symmetric padding)."""

    def __init__(self, chomp_size: int):
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, : -self.chomp_size].contiguous()


class TemporalBlock(nn.Module):
    def __init__(self, n_inputs, n_outputs, kernel_size, stride, dilation, padding, dropout=0.2):
        super().__init__()
        self.conv1 = weight_norm(
            nn.Conv1d(n_inputs, n_outputs, kernel_size, stride=stride, padding=padding, dilation=dilation)
        )
        self.chomp1 = Chomp1d(padding)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)

        self.conv2 = weight_norm(
            nn.Conv1d(n_outputs, n_outputs, kernel_size, stride=stride, padding=padding, dilation=dilation)
        )
        self.chomp2 = Chomp1d(padding)
        self.relu2 = nn.ReLU()
        self.dropout2 = nn.Dropout(dropout)

        self.net = nn.Sequential(
            self.conv1, self.chomp1, self.relu1, self.dropout1,
            self.conv2, self.chomp2, self.relu2, self.dropout2,
        )
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()
        self.init_weights()

    def init_weights(self):
        # As published. For conv1/conv2 this writes into the hook-computed ``weight`` attribute,
        # which weight_norm recomputes from weight_g / weight_v on every forward (no effect).
        self.conv1.weight.data.normal_(0, 0.01)
        self.conv2.weight.data.normal_(0, 0.01)
        if self.downsample is not None:
            self.downsample.weight.data.normal_(0, 0.01)

    def forward(self, x):
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TemporalConvNet(nn.Module):
    def __init__(self, num_inputs, num_channels, kernel_size=2, dropout=0.2):
        super().__init__()
        layers = []
        for i, out_channels in enumerate(num_channels):
            dilation = 2**i
            in_channels = num_inputs if i == 0 else num_channels[i - 1]
            layers.append(
                TemporalBlock(
                    in_channels, out_channels, kernel_size, stride=1, dilation=dilation,
                    padding=(kernel_size - 1) * dilation, dropout=dropout,
                )
            )
        self.network = nn.Sequential(*layers)

    def forward(self, x):
        return self.network(x)


class TCN(nn.Module):
    """The sequential-MNIST task model: TCN, Linear on the last time step, log-softmax."""

    def __init__(self, input_size, output_size, num_channels, kernel_size, dropout):
        super().__init__()
        self.tcn = TemporalConvNet(input_size, num_channels, kernel_size=kernel_size, dropout=dropout)
        self.linear = nn.Linear(num_channels[-1], output_size)

    def forward(self, inputs):
        """``inputs`` is (N, C_in, L)."""
        y1 = self.tcn(inputs)
        o = self.linear(y1[:, :, -1])
        return F.log_softmax(o, dim=1)


# pmnist_test.py defaults.
INPUT_CHANNELS = 1
SEQ_LENGTH = 784
N_CLASSES = 10
NHID = 25
LEVELS = 8
KSIZE = 7
DROPOUT = 0.05


def build():
    """The sequential-MNIST TCN of pmnist_test.py (8 levels x 25 channels, kernel 7)."""
    return TCN(INPUT_CHANNELS, N_CLASSES, [NHID] * LEVELS, kernel_size=KSIZE, dropout=DROPOUT)


def small():
    """Same model and init: 3 levels of 8 channels, kernel 3."""
    return TCN(INPUT_CHANNELS, N_CLASSES, [8] * 3, kernel_size=3, dropout=DROPOUT)


def example_inputs(model):
    """A batch of 64 pixel sequences, (64, 1, 784), as pmnist_test.py feeds them (``data.view(-1, 1,
    784)`` of MNIST tensors in [0, 1]; no normalisation). The sequence length is the task's, which the
    first layer cannot tell: the 784-step input fills the receptive field of the 8-level model (3061
    steps) only partly, as in training."""
    gen = torch.Generator().manual_seed(0)
    channels = model.tcn.network[0].conv1.in_channels
    # MNIST-like pixels: about 80% background zeros, the rest in (0, 1].
    ink = torch.rand(64, channels, SEQ_LENGTH, generator=gen)
    mask = torch.rand(64, channels, SEQ_LENGTH, generator=gen) < 0.2
    return (ink * mask,)


if __name__ == "__main__":
    m = build()
    print(sum(p.numel() for p in m.parameters()), "parameters")
    with torch.no_grad():
        print(tuple(m(*example_inputs(m)).shape))

"""Deep tanh MLP character model of Karpathy's "makemore part 3", in the state the lecture uses to show
the problem: no BatchNorm and no tanh gain.

Pattern: a character-level MLP language model (Bengio et al. 2003 style): the previous
``block_size`` = 3 characters are looked up in an embedding table C (27 x 10), concatenated (30
values), passed through 5 hidden layers Linear(-> 100) + Tanh, and a final Linear to 27 logits. The
lecture's ``Linear`` initialises its weight with ``torch.randn(fan_in, fan_out) / fan_in**0.5`` (here
N(0, 1/fan_in), stored the nn.Linear way) and its bias with zeros; the model then multiplies the last
layer's weight by 0.1 ("last layer: make less confident") and every other Linear weight by a gain.

Source: karpathy/nn-zero-to-hero, ``lectures/makemore/makemore_part3_bn.ipynb`` (the "PyTorch-ifying"
section: classes ``Linear``, ``BatchNorm1d``, ``Tanh``; n_embd 10, n_hidden 100, block_size 3, vocab 27,
six Linear layers). Rewritten here as nn.Modules with the same init.

Which state: the lecture's diagnostic run with the BatchNorm layers commented out and the tanh gain
set to 1.0 instead of 5/3 (``layer.weight *= 1.0``), keeping the last-layer scaling by 0.1. This is
the configuration the lecture shows to demonstrate the problem (see below); the fixes it then teaches
are the 5/3 Kaiming gain for tanh and, mainly, BatchNorm. ``gain=5/3`` gives the fixed version.

Known problem (the one the lecture demonstrates): with gain 1 each tanh layer shrinks the signal,
because tanh contracts and the N(0, 1/fan_in) weights only preserve variance for a linear map. Measured
at init on random 3-character contexts (two seeds), the standard deviation of the tanh outputs falls
layer by layer from about 0.6 to 0.47, 0.40, 0.35 and 0.32 (with gain 5/3 it stays at 0.73, 0.68, 0.67,
0.66, 0.65; with nn.Linear's default init, gain 1/sqrt(3), it collapses: 0.44, 0.25, 0.14, 0.08, 0.05).
With 5 hidden layers the network still trains (the
lecture shows the shrinking activation and gradient statistics as the reason to use the 5/3 gain; the
effect compounds with depth), so this is a mild, depth-dependent problem, not a failure. The lecture also states the reverse failure: a gain that is
too large saturates the tanh units.

Expected linter verdict: a warning at most (shrinking activations / vanishing gradient scale along a
plain tanh stack, with the 5/3 gain or normalisation as the fix); an error would overstate it at this
depth, since the model trains. No ``example_inputs`` is defined: the probe should be token ids of
shape (B, 3), which the first Linear (30 = 3 x 10 inputs) and the embedding (10 columns) together
imply.
"""

import torch
import torch.nn as nn


class MakemoreMLP(nn.Module):
    def __init__(self, vocab_size=27, block_size=3, n_embd=10, n_hidden=100, n_layers=5, gain=1.0, last_scale=0.1):
        super().__init__()
        self.block_size = block_size
        self.C = nn.Embedding(vocab_size, n_embd)  # N(0, 1) like torch.randn((vocab_size, n_embd))
        dims = [n_embd * block_size] + [n_hidden] * n_layers
        layers = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.Tanh()]
        layers.append(nn.Linear(n_hidden, vocab_size))
        self.layers = nn.Sequential(*layers)

        with torch.no_grad():
            for layer in self.layers:
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, 0.0, layer.in_features**-0.5)
                    nn.init.zeros_(layer.bias)
            # last layer: make less confident
            self.layers[-1].weight *= last_scale
            # all other layers: apply gain (1.0 here: the lecture's "no gain, no BatchNorm" run)
            for layer in list(self.layers)[:-1]:
                if isinstance(layer, nn.Linear):
                    layer.weight *= gain

    def forward(self, idx):
        emb = self.C(idx)  # (B, block_size, n_embd)
        x = emb.view(emb.shape[0], -1)  # concatenate the context
        return self.layers(x)


def small():
    """Same model and init with 3 hidden layers of 32."""
    return MakemoreMLP(n_hidden=32, n_layers=3)


if __name__ == "__main__":
    m = MakemoreMLP()
    print(sum(p.numel() for p in m.parameters()), "parameters")
    idx = torch.randint(0, 27, (1000, 3), generator=torch.Generator().manual_seed(0))
    x = m.C(idx).view(1000, -1)
    for layer in m.layers:
        x = layer(x)
        if isinstance(layer, nn.Tanh):
            print(f"tanh out std {x.std().item():.3f}")

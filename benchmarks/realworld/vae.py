"""The MNIST variational auto-encoder of the PyTorch examples.

Pattern: a fully connected VAE. The encoder is one hidden ReLU layer (784 -> 400) with two linear
heads for the posterior mean and log-variance (400 -> 20 each); the latent is sampled with the
reparameterisation trick (``mu + eps * exp(0.5 * logvar)``, ``eps = randn_like``); the decoder is
20 -> 400 (ReLU) -> 784 with a sigmoid. ``forward`` flattens its input to (N, 784) and returns the
tuple ``(reconstruction, mu, logvar)``; the training loss (binary cross-entropy plus the analytic KL
term) is computed outside the model.

Source: pytorch/examples, ``vae/main.py`` (class ``VAE``). Rewritten here with the same layers,
names and forward computation; the data loaders, the loss and the training loop are left out.

Published init: none of its own; every ``nn.Linear`` keeps PyTorch's default (kaiming-uniform with
a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases).

Known problem of the original: none for trainability. It trains with Adam (lr 1e-3, batch 128) to a
test loss of about 104 nats per image after 10 epochs. (Some forks clamp the sigmoid output or add
the continuous-Bernoulli normaliser; the upstream example does not, and neither does this file.)

Expected linter verdict: the network is three layers deep on any input-to-output path (fc1, the
fc21/fc22 heads, fc3, fc4: at most four weight layers), so neither exploding nor vanishing gradients
can be an issue; the default init shrinks activations somewhat (PyTorch's default gain is 1/sqrt(3)
of He), which is harmless at this depth. No warning or error is justified; informational notes are
acceptable. The sampling noise makes the output stochastic; a linter that draws it with a fixed seed
should still see a well-conditioned network.
"""

import torch
from torch import nn
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self, in_features: int = 784, hidden: int = 400, latent: int = 20):
        super().__init__()
        self.in_features = in_features
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, in_features)

    def encode(self, x):
        hidden = F.relu(self.fc1(x))
        return self.fc21(hidden), self.fc22(hidden)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        hidden = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(hidden))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, self.in_features))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    """The example's loss: summed binary cross-entropy plus KL(q(z|x) || N(0, I))."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, recon_x.size(-1)), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def small():
    """Same architecture and init on 64-dimensional inputs: 64 -> 32 -> (8, 8) -> 32 -> 64."""
    return VAE(in_features=64, hidden=32, latent=8)


if __name__ == "__main__":
    m = VAE()
    print(sum(p.numel() for p in m.parameters()), "parameters")
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        recon, mu, logvar = m(x)
        print(tuple(recon.shape), float(loss_function(recon, x, mu, logvar)))

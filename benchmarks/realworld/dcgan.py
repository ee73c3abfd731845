"""DCGAN generator and discriminator of the PyTorch examples (dcgan/main.py), 64x64 RGB.

Pattern (Radford et al. 2016):
- Generator: latent z of shape (B, nz, 1, 1) -> ConvTranspose2d(nz, 8 ngf, 4, 1, 0) to 4x4 -> three
  ConvTranspose2d(4, stride 2, padding 1) doubling the resolution (8, 16, 32) -> ConvTranspose2d to
  nc x 64 x 64 -> Tanh; BatchNorm2d + ReLU after every deconvolution but the last; no biases.
- Discriminator: 64x64 image -> Conv2d(4, stride 2, padding 1) + LeakyReLU(0.2) (no BN on the first
  layer) -> three Conv2d(4, 2, 1) + BatchNorm2d + LeakyReLU(0.2) down to 4x4 -> Conv2d(8 ndf, 1, 4, 1, 0)
  -> Sigmoid, returned as ``output.view(-1, 1).squeeze(1)``, i.e. one probability per image (B,).

Source: pytorch/examples, ``dcgan/main.py`` (``weights_init``, ``Generator``, ``Discriminator``;
classes named ``_netG``/``_netD`` in early revisions). Rewritten here with main.py's defaults:
nz 100, ngf 64, ndf 64, nc 3, imageSize 64, ngpu 1. The classes take ``ngpu`` as in the original
(``nn.parallel.data_parallel`` over several GPUs when the input is on CUDA and ngpu > 1).

Published init: ``netG.apply(weights_init)`` / ``netD.apply(weights_init)``: every module whose class
name contains "Conv" (Conv2d and ConvTranspose2d) gets weight ~ N(0, 0.02); every "BatchNorm" gets
weight ~ N(1, 0.02) and bias 0. ``build_generator()`` and ``build_discriminator()`` construct each
network with ngpu=1 and apply it, as main.py does.

Known problem of the original: none at initialisation (GAN training dynamics aside); with Adam
(lr 2e-4, beta1 0.5) it produces the well-known LSUN / CIFAR-10 / CelebA samples. N(0, 0.02) is
below a variance-preserving scale for the narrow layers (the discriminator's Conv2d(3, 64, 4) has
fan-in 48, He std 0.20; the generator's last deconvolution 0.044) and near it for the wide ones, but
every layer except the first discriminator conv and the two output convs is followed by BatchNorm,
which removes the scale. At init the generator's Tanh sees pre-activations of std 0.22 (nearly
linear, 0.01 % beyond |1|) and the discriminator's Sigmoid pre-activations of std about 1 (measured
on (64, 100, 1, 1) latents and clamped Gaussian images).

No ``example_inputs`` is defined: the generator's input should be the latent (B, nz, 1, 1), which
is what a user expects a linter to infer from ConvTranspose2d(nz, ...) with a 1x1 spatial size.

Expected linter verdict: both networks train with the published recipe, so no error is justified.
A note that the generator's final Tanh is near-linear at init (small pre-activations) would be
accurate but is not a defect.
"""

import torch
import torch.nn as nn
import torch.nn.parallel

nz = 100  # size of the latent z vector
ngf = 64
ndf = 64
nc = 3
ngpu = 1


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, ngpu):
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # z: nz x 1 x 1
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # ngf x 32 x 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
            # nc x 64 x 64
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            return nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self, ngpu):
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # nc x 64 x 64
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # ndf x 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf*2) x 16 x 16
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf*4) x 8 x 8
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf*8) x 4 x 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output.view(-1, 1).squeeze(1)


def build_generator():
    netG = Generator(ngpu)
    netG.apply(weights_init)
    return netG


def build_discriminator():
    netD = Discriminator(ngpu)
    netD.apply(weights_init)
    return netD


class _SmallGenerator(nn.Module):
    """Generator layout at 16x16 with ngf 8 and nz 16 (for the test suite)."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(16, 32, 4, 1, 0, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(True),
            nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(True),
            nn.ConvTranspose2d(16, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


def small():
    """A small generator with the same layer pattern and init (latent 16 x 1 x 1 -> 3 x 16 x 16)."""
    net = _SmallGenerator()
    net.apply(weights_init)
    return net


if __name__ == "__main__":
    g, d = build_generator(), build_discriminator()
    print(sum(p.numel() for p in g.parameters()), sum(p.numel() for p in d.parameters()), "parameters")
    z = torch.randn(4, nz, 1, 1)
    img = g(z)
    print(tuple(img.shape), tuple(d(img).shape))

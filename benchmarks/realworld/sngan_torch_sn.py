"""SN-GAN discriminator (CIFAR-10, 32x32) with PyTorch's own spectral normalisation, two APIs.

Pattern: the DCGAN-like SN-GAN discriminator (seven convolutions with 64, 64, 128, 128, 256, 256,
512 channels, three of them 4x4 stride 2, each followed by LeakyReLU(0.1); a Linear on the
flattened 4x4x512 map gives one logit), with every layer spectrally normalised by PyTorch instead
of a hand-written wrapper:
- ``build_parametrized()``: ``torch.nn.utils.parametrizations.spectral_norm`` (the current API: a
  parametrisation registered on ``weight``; ``layer.weight`` is recomputed from
  ``parametrizations.weight.original`` on access, with ``_u``/``_v`` buffers and one power iteration
  per forward in training mode);
- ``build_legacy()``: ``torch.nn.utils.spectral_norm`` (the deprecated forward-pre-hook API:
  parameters ``weight_orig``, buffers ``weight_u``/``weight_v``, the hook writes ``weight`` before
  each call).

Source: the discriminator of christiancosgrove/pytorch-spectral-normalization-gan ``model.py``
(``Discriminator``), with the repository's ``SpectralNorm`` wrapper replaced by the torch APIs, as
ports of that repository and PyTorch's DCGAN-style SN-GAN examples do (e.g. the
``torch.nn.utils.spectral_norm`` discriminators in the pytorch-gan-collections family). The
hand-written-wrapper version is ``sngan_discriminator.py`` in this folder. Rewritten here.

Published init: PyTorch's default Conv2d/Linear init; the spectral-norm vectors ``u``/``v`` start
as normalised N(0, 1) draws. The parametrised API runs 15 power iterations at registration (its
default ``n_power_iterations=1`` per forward, plus the initial warm-up), so sigma is accurate from
the start; the legacy hook does no warm-up.

Known problem of the original: none; SN-GAN discriminators train with Adam (lr 2e-4, betas
(0.5, 0.999)) on CIFAR-10.

Tracing note: ``forward`` builds ``nn.LeakyReLU(0.1)`` modules on the fly, as the original does;
torch.fx rejects a call to a module that is not a submodule, so a linter falls back to another
capture for this reason alone.

Expected linter verdict: an 8-layer spectrally normalised LeakyReLU(0.1) CNN, so no gradient error
or warning is justified. Spectral normalisation divides each layer by its largest singular value:
the forward signal shrinks layer by layer (most singular values of a normalised weight are well
below 1), so the output is small relative to the input, but the gradient scale relative to the
output stays moderate over only eight layers. Both variants should get the same verdict, and the
linter should measure all layers (full parameter coverage) in both.
"""

import torch
from torch import nn
from torch.nn.utils import parametrizations
from torch.nn.utils import spectral_norm as legacy_spectral_norm

CHANNELS = 3
LEAK = 0.1
W_G = 4  # spatial size of the last feature map for 32x32 inputs


class SNDiscriminator(nn.Module):
    """DCGAN-like SN discriminator; ``sn`` wraps each layer, ``width`` 64 is the published size."""

    def __init__(self, sn, width: int = 64):
        super().__init__()
        c1, c2, c3, c4 = width, 2 * width, 4 * width, 8 * width
        self.top = c4
        self.conv1 = sn(nn.Conv2d(CHANNELS, c1, 3, stride=1, padding=(1, 1)))
        self.conv2 = sn(nn.Conv2d(c1, c1, 4, stride=2, padding=(1, 1)))
        self.conv3 = sn(nn.Conv2d(c1, c2, 3, stride=1, padding=(1, 1)))
        self.conv4 = sn(nn.Conv2d(c2, c2, 4, stride=2, padding=(1, 1)))
        self.conv5 = sn(nn.Conv2d(c2, c3, 3, stride=1, padding=(1, 1)))
        self.conv6 = sn(nn.Conv2d(c3, c3, 4, stride=2, padding=(1, 1)))
        self.conv7 = sn(nn.Conv2d(c3, c4, 3, stride=1, padding=(1, 1)))
        self.fc = sn(nn.Linear(W_G * W_G * c4, 1))

    def forward(self, x):
        m = x
        m = nn.LeakyReLU(LEAK)(self.conv1(m))
        m = nn.LeakyReLU(LEAK)(self.conv2(m))
        m = nn.LeakyReLU(LEAK)(self.conv3(m))
        m = nn.LeakyReLU(LEAK)(self.conv4(m))
        m = nn.LeakyReLU(LEAK)(self.conv5(m))
        m = nn.LeakyReLU(LEAK)(self.conv6(m))
        m = nn.LeakyReLU(LEAK)(self.conv7(m))
        return self.fc(m.view(-1, W_G * W_G * self.top))


def build_parametrized():
    """The discriminator with ``torch.nn.utils.parametrizations.spectral_norm`` on every layer."""
    return SNDiscriminator(parametrizations.spectral_norm)


def build_legacy():
    """The discriminator with the legacy hook ``torch.nn.utils.spectral_norm`` on every layer."""
    return SNDiscriminator(legacy_spectral_norm)


def small():
    """Parametrised variant at width 32 (half the benchmark's), same init; at width 8 or 16 the last
    LeakyReLUs see one sign on most samples, which the published width does not."""
    return SNDiscriminator(parametrizations.spectral_norm, width=32)


def small_legacy():
    """Legacy-hook variant at width 32, same init."""
    return SNDiscriminator(legacy_spectral_norm, width=32)


if __name__ == "__main__":
    for factory in (build_parametrized, build_legacy):
        d = factory()
        n = sum(p.numel() for p in d.parameters() if p.requires_grad)
        print(factory.__name__, n, "parameters", tuple(d(torch.randn(4, CHANNELS, 32, 32)).shape))

"""Model builders shared by the tests: the paper's MLPs and small healthy references.

The healthy references (``ResidualMLP``, ``pre_norm_transformer``, ``resnet18_like``, ``vgg_like_bn``)
are standard architectures with standard inits; ``benchmarks/calibration.py`` measures them against the
paper's unhealthy MLPs to place the rule thresholds.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.paper import ResidualMLP  # noqa: F401 - re-exported: width 100, 25 blocks, branches x0.2


def mlp(depth: int, width: int, act=nn.ReLU, norm: str | None = None, init: str | None = None,
        classes: int = 10) -> nn.Sequential:
    """``depth`` blocks of Linear -> [norm] -> act, then a linear head.  init: None (PyTorch default), he, lecun."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        if init == "he":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        elif init == "lecun":
            nn.init.normal_(linear.weight, std=width ** -0.5)
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "layer":
            layers.append(nn.LayerNorm(width))
        layers.append(act())
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: conv-bn-relu-conv-bn, ``out += identity`` (operator.iadd), in-place relu."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, stride=2), BasicBlock(16, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))

    def without_branches(self, x):
        """The same network with every residual branch removed: each block is relu(shortcut(x))."""
        x = self.stem(x)
        for block in self.blocks:
            identity = block.downsample(x) if block.downsample is not None else x
            x = F.relu(identity)
        return self.fc(torch.flatten(self.pool(x), 1))


def gaussian(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def tokens(batch: int, length: int, vocab: int, seed: int = 0) -> torch.Tensor:
    """Uniform token ids in [0, vocab), shape (batch, length), from their own generator."""
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- healthy references
# Standard architectures with their standard inits, small enough to lint in well under 3 s on 2 cores.
# They train well in practice, so a warning or error on any of them is a false positive.


class SelfAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention(batch_first=True)`` called as self-attention on one input, optionally causal.

    A subclass, so gradlint's tracer keeps it a leaf (one depth-bearing node); the causal mask is built
    inside the leaf from the sequence length, so torch.fx never sees it.
    """

    def __init__(self, d_model: int, heads: int, causal: bool = True):
        super().__init__(d_model, heads, batch_first=True)
        self.causal = causal

    def forward(self, x):
        mask = None
        if self.causal:
            t = x.size(1)
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1)  # True: the future
        return super().forward(x, x, x, attn_mask=mask, need_weights=False)[0]


class PreNormBlock(nn.Module):
    """``x = x + attn(ln1(x)); x = x + mlp(ln2(x))``."""

    def __init__(self, d_model: int, heads: int, mlp_ratio: int = 4, causal: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, heads, causal)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class PreNormTransformer(nn.Module):
    """A small pre-norm Transformer LM (GPT-2 layout) with PyTorch's default init throughout.

    Token Embedding (N(0, 1)) plus a learned positional Embedding, ``depth`` pre-norm blocks with a
    causal mask, a final LayerNorm and a Linear head.  Traceable by torch.fx: the positional table is
    sliced as a parameter (a proxy while tracing) and the mask is made inside the attention leaf.
    """

    def __init__(self, depth: int = 6, d_model: int = 128, heads: int = 4, vocab: int = 1000,
                 max_len: int = 64, causal: bool = True):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(PreNormBlock(d_model, heads, causal=causal) for _ in range(depth))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, idx):
        x = self.tok(idx) + self.pos.weight[: idx.size(1)]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def pre_norm_transformer(depth: int = 6, d_model: int = 128, heads: int = 4, vocab: int = 1000,
                         causal: bool = True) -> PreNormTransformer:
    """Probe with ``tokens(16, 32, vocab)``."""
    return PreNormTransformer(depth, d_model, heads, vocab, causal=causal)


class ResNet18Like(nn.Module):
    """torchvision's ResNet-18 layout for 32x32 inputs: conv3x3 stem, 4 stages x 2 BasicBlocks, avg pool, fc.

    Init as torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") for convs, BN weight 1 and
    bias 0, default Linear init for the head; with ``zero_init_residual`` each block's bn2 weight is 0.
    """

    def __init__(self, zero_init_residual: bool = True, width: int = 16, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        cin = width
        for stage, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2 ** stage
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def resnet18_like(zero_init_residual: bool = True, width: int = 16) -> ResNet18Like:
    """Probe with ``gaussian(8, 3, 32, 32)``."""
    return ResNet18Like(zero_init_residual, width)


# torchvision's VGG configurations as channel multipliers of ``width`` (capped at 8 x width), "M" a max pool;
# the key is the number of depth-bearing layers (convs + 3 in torchvision's classifier; ours has 2).
VGG_CONFIGS = {
    11: (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"),
    13: (1, 1, "M", 2, 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"),
    16: (1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"),
    19: (1, 1, "M", 2, 2, "M", 4, 4, 4, 4, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M"),
}
VGG11 = VGG_CONFIGS[11]


class VGGLikeBN(nn.Module):
    """VGG with BatchNorm (torchvision's vgg*_bn layout and init, narrower, for 32x32 inputs; VGG-11 by default).

    Conv3x3 (with bias, as torchvision) -> BN -> ReLU blocks and five 2x2 max pools, then a classifier
    Linear -> ReLU -> Linear.  Init as torchvision: convs kaiming_normal_(mode="fan_out", relu) with
    zero bias, BN weight 1 and bias 0, Linear N(0, 0.01) with zero bias.
    """

    def __init__(self, width: int = 32, classes: int = 10, hidden: int | None = None, depth: int = 11):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in VGG_CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                cout = width * v
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
                cin = cout
        self.features = nn.Sequential(*layers)
        hidden = hidden or cin
        self.classifier = nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def vgg_like_bn(width: int = 32, depth: int = 11) -> VGGLikeBN:
    """VGG-``depth`` (11, 13, 16 or 19) with BN; probe with ``gaussian(8, 3, 32, 32)``."""
    return VGGLikeBN(width, depth=depth)

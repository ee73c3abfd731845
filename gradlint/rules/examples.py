"""Small models several rules flag (``triggers``) or must not flag (``clean``), and the builders every
example uses; a model only one rule uses sits beside that rule, in its own module.

Every factory returns ``(model, inputs)`` built from a fixed seed; one parametrised test
(tests/test_rules.py) lints them all.  torch is imported inside the factories so that importing the
rules stays cheap and the rules themselves never touch it.
"""

from __future__ import annotations


def seeded_torch():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return torch, nn


def randn(*shape: int):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def mlp(depth: int, width: int, act: str = "relu", norm: str | None = None, init: str | None = "he",
         bias: float = 0.0, classes: int = 10):
    torch, nn = seeded_torch()
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        if init == "he":
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        elif init == "lecun":
            nn.init.normal_(lin.weight, std=width ** -0.5)
        elif isinstance(init, float):
            nn.init.normal_(lin.weight, std=init * width ** -0.5)
        if init is not None:
            nn.init.constant_(lin.bias, bias)
        layers.append(lin)
        if norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "layer":
            layers.append(nn.LayerNorm(width))
        layers.append({"relu": nn.ReLU, "tanh": nn.Tanh, "selu": nn.SELU}[act]())
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def batch_relu_mlp():
    """30 Linear -> BatchNorm1d -> ReLU layers, width 64, He init: the paper's exploding net."""
    return mlp(30, 64, norm="batch"), (randn(64, 64),)


def layer_norm_tanh_mlp():
    """30 Linear -> LayerNorm -> tanh layers, width 64, LeCun init: explodes at ~1.09 per layer."""
    return mlp(30, 64, act="tanh", norm="layer", init="lecun"), (randn(64, 64),)


def residual_mlp():
    """A pre-LayerNorm residual MLP, 12 blocks, branches scaled by 0.2: healthy."""
    from ..paper import ResidualMLP

    seeded_torch()
    return ResidualMLP(width=64, blocks=12, scale=0.2), (randn(64, 64),)


def shallow_mlp():
    """A 3-layer ReLU MLP, PyTorch default init: healthy."""
    return mlp(3, 64, init=None), (randn(64, 64),)


def default_init_relu_mlp():
    """20 Linear -> ReLU layers with PyTorch's default init: the signal shrinks until biases dominate."""
    return mlp(20, 64, init=None), (randn(64, 64),)


def he_relu_mlp():
    """40 Linear -> ReLU layers, He init, zero biases: scale kept, sign diversity lost."""
    return mlp(40, 64), (randn(128, 64),)


def lecun_tanh_mlp():
    """40 Linear -> tanh layers, weight variance 1/fan_in: tanh becomes the identity on its domain."""
    return mlp(40, 64, act="tanh", init="lecun"), (randn(64, 64),)


def looks_linear_mlp():
    """The He-init ReLU MLP put into the looks-linear orthogonal initial state."""
    import torch

    from ..init import looks_linear_

    model, x = he_relu_mlp()
    return looks_linear_(model, generator=torch.Generator().manual_seed(0)), x


def resnet(alpha: float, blocks: int = 16, width: int = 64, post_norm: bool = False):
    torch, nn = seeded_torch()

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(width, width)
            self.bn = nn.BatchNorm1d(width)
            self.fc2 = nn.Linear(width, width)
            self.norm = nn.LayerNorm(width) if post_norm else nn.Identity()
            nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
            nn.init.normal_(self.fc2.weight, std=width ** -0.5)

        def forward(self, x):
            return self.norm(x + alpha * self.fc2(torch.relu(self.bn(self.fc1(x)))))

    model = nn.Sequential(*(Block() for _ in range(blocks)), nn.Linear(width, 10))
    return model, (randn(64, width),)


def dominant_branch_resnet():
    """16 post-norm residual blocks LayerNorm(x + 4 f(x)): every branch is 4x its skip, block after block."""
    return resnet(4.0, post_norm=True)


def diluted_resnet():
    """16 residual blocks whose branches are scaled by 0.2: the skip dominates (k ~ 7)."""
    return resnet(0.2)


def squeeze_excitation_net():
    """Conv -> BN -> ReLU blocks, each with a squeeze-excitation gate (pool -> 1x1 conv -> ReLU -> 1x1 conv
    -> sigmoid, multiplying the block): on Gaussian images the gate's sigmoid is nearly linear, by design."""
    torch, nn = seeded_torch()

    class SE(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc1, self.act, self.fc2, self.gate = nn.Conv2d(c, c // 4, 1), nn.ReLU(), nn.Conv2d(c // 4, c, 1), nn.Sigmoid()

        def forward(self, x):
            return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))

    layers = [nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()]
    for _ in range(4):
        layers += [nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), SE(32)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)), (randn(16, 3, 16, 16),)


def conv_stack(widths: list, hidden: int, classes: int = 10):
    """3x3 conv -> BN -> ReLU layers (a number in ``widths``; "M" is a 2x2 max pool), global average
    pooling and a linear classifier; torchvision's init (kaiming_normal_ fan_out for convs)."""
    torch, nn = seeded_torch()
    layers, cin = [], 3
    for v in widths:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            cin = v
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, hidden), nn.ReLU(),
                          nn.Linear(hidden, classes))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def plain_bn_relu_cnn():
    """30 plain 3x3 conv -> BN -> ReLU layers in three stages, a pooled head: He et al.'s degradation
    problem (their plain-34 trains worse than plain-18; the residual version does not)."""
    return conv_stack([16] * 10 + ["M"] + [32] * 10 + ["M"] + [64] * 10, 64), (randn(8, 3, 32, 32),)


def vgg19_bn_like():
    """VGG-19's 16 conv -> BN -> ReLU layers (narrow, 32x32 inputs) and a pooled head: trains with its
    standard recipe; its gradient grows ~1.2x per layer, but over 16 layers only."""
    return conv_stack([16, 16, "M", 32, 32, "M", 64, 64, 64, 64, "M", 128, 128, 128, 128, "M",
                        128, 128, 128, 128], 128), (randn(8, 3, 32, 32),)


def small_lm(head_std: float | None, vocab: int = 256, width: int = 64):
    """A token MLP language model: embedding, two tanh layers, a final LayerNorm, a linear head over the
    vocabulary (drawn with ``head_std``)."""
    torch, nn = seeded_torch()
    model = nn.Sequential(nn.Embedding(vocab, width), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width),
                          nn.Tanh(), nn.LayerNorm(width), nn.Linear(width, vocab))
    if head_std is not None:
        nn.init.normal_(model[-1].weight, std=head_std)
        nn.init.zeros_(model[-1].bias)
    ids = torch.randint(0, vocab, (64, 16), generator=torch.Generator().manual_seed(1))
    return model, (ids,)


def token_vit(token_std: float, patches: int = 16, width: int = 64, depth: int = 4):
    """A pre-norm Transformer over patch vectors with a class token and a learned position embedding of the
    given std, read out at the class token."""
    torch, nn = seeded_torch()

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.attn = nn.MultiheadAttention(width, 4, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

        def forward(self, x):
            h = self.norm1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.norm2(x))

    class TokenViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Sequential(nn.LayerNorm(48), nn.Linear(48, width), nn.LayerNorm(width))
            self.cls_token = nn.Parameter(torch.randn(1, 1, width) * token_std)
            self.pos_embedding = nn.Parameter(torch.randn(1, patches + 1, width) * token_std)
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 10))

        def forward(self, patches_):
            x = self.embed(patches_)
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
            return self.head(self.blocks(x)[:, 0])

    return TokenViT(), (randn(64, patches, 48),)


def small_token_vit():
    """The same ViT with class token and position embedding drawn with std 0.02 (timm's and BERT's)."""
    return token_vit(0.02)



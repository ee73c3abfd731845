"""Small models each rule must flag (``triggers``) and must not flag (``clean``).

Every factory returns ``(model, inputs)`` built from a fixed seed; one parametrised test
(tests/test_rules.py) lints them all.  torch is imported inside the factories so that importing the
rules stays cheap and the rules themselves never touch it.
"""

from __future__ import annotations


def _torch():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return torch, nn


def _x(*shape: int):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def _mlp(depth: int, width: int, act: str = "relu", norm: str | None = None, init: str | None = "he",
         bias: float = 0.0, classes: int = 10):
    torch, nn = _torch()
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
    return _mlp(30, 64, norm="batch"), (_x(64, 64),)


def layer_norm_tanh_mlp():
    """30 Linear -> LayerNorm -> tanh layers, width 64, LeCun init: explodes at ~1.09 per layer."""
    return _mlp(30, 64, act="tanh", norm="layer", init="lecun"), (_x(64, 64),)


def residual_mlp():
    """A pre-LayerNorm residual MLP, 12 blocks, branches scaled by 0.2: healthy."""
    from ..paper import ResidualMLP

    _torch()
    return ResidualMLP(width=64, blocks=12, scale=0.2), (_x(64, 64),)


def shallow_mlp():
    """A 3-layer ReLU MLP, PyTorch default init: healthy."""
    return _mlp(3, 64, init=None), (_x(64, 64),)


def default_init_relu_mlp():
    """20 Linear -> ReLU layers with PyTorch's default init: the signal shrinks until biases dominate."""
    return _mlp(20, 64, init=None), (_x(64, 64),)


def he_relu_mlp():
    """40 Linear -> ReLU layers, He init, zero biases: scale kept, sign diversity lost."""
    return _mlp(40, 64), (_x(128, 64),)


def lecun_tanh_mlp():
    """40 Linear -> tanh layers, weight variance 1/fan_in: tanh becomes the identity on its domain."""
    return _mlp(40, 64, act="tanh", init="lecun"), (_x(64, 64),)


def looks_linear_mlp():
    """The He-init ReLU MLP put into the looks-linear orthogonal initial state."""
    import torch

    from ..init import looks_linear_

    model, x = he_relu_mlp()
    return looks_linear_(model, generator=torch.Generator().manual_seed(0)), x


def orthogonal_batch_relu_mlp():
    """The batch-ReLU MLP with orthogonal weights: still explodes (BatchNorm), but its weights are orthogonal."""
    import torch

    from ..init import orthogonal_

    model, x = batch_relu_mlp()
    return orthogonal_(model, generator=torch.Generator().manual_seed(0)), x


def dead_relu_layer():
    """Linear -> ReLU with biases of -3: most units are never positive."""
    return _mlp(2, 64, bias=-3.0), (_x(64, 64),)


def saturated_tanh_layer():
    """Linear -> tanh on unnormalised pixel values in [0, 255]: every unit sits on a flat part of tanh."""
    import torch

    model = _mlp(2, 64, act="tanh", init="lecun")
    return model, (255 * torch.rand(64, 64, generator=torch.Generator().manual_seed(1)),)


def nonfinite_model():
    """A forward that takes the log of a ReLU output: -inf wherever the ReLU is zero."""
    torch, nn = _torch()

    class LogReLU(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            return self.head(torch.log(torch.relu(self.fc(x))))

    return LogReLU(), (_x(32, 16),)


def untraceable_model():
    """Data-dependent control flow in forward: torch.fx cannot trace it."""
    torch, nn = _torch()

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(16, 16)
            self.b = nn.Linear(16, 4)

        def forward(self, x):
            h = torch.relu(self.a(x))
            if h.sum() > 0:
                h = h * 2
            return self.b(h)

    return Branchy(), (_x(32, 16),)


def zero_head_model():
    """A zero-initialised classifier head (common in vision transformers): the output is exactly zero."""
    torch, nn = _torch()
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    nn.init.zeros_(model[4].weight)
    nn.init.zeros_(model[4].bias)
    return model, (_x(32, 16),)


def parameter_free_token_model():
    """One-hot features of token ids with no parameter on the path: nothing can carry a gradient."""
    torch, nn = _torch()

    class OneHot(nn.Module):
        def forward(self, tokens):
            return torch.nn.functional.one_hot(tokens, 16).float().mean(1)

    return OneHot(), (torch.randint(0, 16, (32, 8), generator=torch.Generator().manual_seed(1)),)


def cloned_layers_model():
    """Four blocks made by copy.deepcopy of one block (as nn.TransformerEncoder does): identical weights."""
    import copy

    torch, nn = _torch()
    block = nn.Sequential(nn.Linear(32, 32), nn.LayerNorm(32), nn.ReLU())
    model = nn.Sequential(*(copy.deepcopy(block) for _ in range(4)), nn.Linear(32, 4))
    return model, (_x(64, 32),)


def weight_tied_model():
    """One Linear applied three times (weight tying): the same parameter, not a copy."""
    torch, nn = _torch()

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(32, 32)
            self.head = nn.Linear(32, 4)

        def forward(self, x):
            for _ in range(3):
                x = torch.relu(self.fc(x))
            return self.head(x)

    return Tied(), (_x(64, 32),)


def narrow_deep_mlp():
    """24 Linear -> LayerNorm -> ReLU layers of width 16: sum of 1/width = 1.5."""
    return _mlp(24, 16, norm="layer"), (_x(64, 16),)


def wide_shallow_mlp():
    """6 Linear -> LayerNorm -> ReLU layers of width 256: sum of 1/width = 0.02."""
    return _mlp(6, 256, norm="layer"), (_x(64, 256),)


def _resnet(alpha: float, blocks: int = 16, width: int = 64, post_norm: bool = False):
    torch, nn = _torch()

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
    return model, (_x(64, width),)


def dominant_branch_resnet():
    """16 post-norm residual blocks LayerNorm(x + 4 f(x)): every branch is 4x its skip, block after block."""
    return _resnet(4.0, post_norm=True)


def diluted_resnet():
    """16 residual blocks whose branches are scaled by 0.2: the skip dominates (k ~ 7)."""
    return _resnet(0.2)


def conv_bias_before_batchnorm():
    """Conv2d(bias=True) -> BatchNorm2d -> ReLU: BatchNorm subtracts the channel mean, the bias cancels."""
    torch, nn = _torch()
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return model, (_x(8, 3, 16, 16),)


def conv_without_bias_before_batchnorm():
    """Conv2d(bias=False) -> BatchNorm2d -> ReLU, as torchvision builds it."""
    torch, nn = _torch()
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return model, (_x(8, 3, 16, 16),)


def linear_bias_before_layernorm():
    """Linear(bias=True) -> LayerNorm: LayerNorm normalises over features, so a per-feature bias survives."""
    return _mlp(3, 32, norm="layer"), (_x(64, 32),)


def opaque_function_model():
    """A custom autograd.Function holding most of the weights: the probe cannot see inside it."""
    torch, nn = _torch()

    class ScaledMatmul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x @ w.t()

        @staticmethod
        def backward(ctx, grad):
            x, w = ctx.saved_tensors
            return grad @ w, grad.t() @ x

    class Opaque(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(16, 64)
            self.weight = nn.Parameter(torch.randn(64, 64) / 8)
            self.head = nn.Linear(64, 4)

        def forward(self, x):
            return self.head(torch.relu(ScaledMatmul.apply(self.inp(x), self.weight)))

    return Opaque(), (_x(32, 16),)


def squeeze_excitation_net():
    """Conv -> BN -> ReLU blocks, each with a squeeze-excitation gate (pool -> 1x1 conv -> ReLU -> 1x1 conv
    -> sigmoid, multiplying the block): on Gaussian images the gate's sigmoid is nearly linear, by design."""
    torch, nn = _torch()

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
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)), (_x(16, 3, 16, 16),)


def pooler_tanh_head():
    """An encoder whose classifier sits behind one tanh on a pooled vector (BERT's pooler): one
    pseudo-linear nonlinearity costs one layer of depth, at most info."""
    torch, nn = _torch()

    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(32, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 64), nn.LayerNorm(64))
            self.pooler = nn.Linear(64, 64)
            self.act = nn.Tanh()
            self.head = nn.Linear(64, 4)
            for m in self.modules():
                if isinstance(m, nn.Linear):  # BERT's init: N(0, 0.02), zero bias
                    nn.init.normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            return self.head(self.act(self.pooler(self.body(x).mean(1))))

    return Pooled(), (_x(16, 12, 32),)


def _conv_stack(widths: list, hidden: int, classes: int = 10):
    """3x3 conv -> BN -> ReLU layers (a number in ``widths``; "M" is a 2x2 max pool), global average
    pooling and a linear classifier; torchvision's init (kaiming_normal_ fan_out for convs)."""
    torch, nn = _torch()
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
    return _conv_stack([16] * 10 + ["M"] + [32] * 10 + ["M"] + [64] * 10, 64), (_x(8, 3, 32, 32),)


def vgg19_bn_like():
    """VGG-19's 16 conv -> BN -> ReLU layers (narrow, 32x32 inputs) and a pooled head: trains with its
    standard recipe; its gradient grows ~1.2x per layer, but over 16 layers only."""
    return _conv_stack([16, 16, "M", 32, 32, "M", 64, 64, 64, 64, "M", 128, 128, 128, 128, "M",
                        128, 128, 128, 128], 128), (_x(8, 3, 32, 32),)


def _small_lm(head_std: float | None, vocab: int = 256, width: int = 64):
    """A token MLP language model: embedding, two tanh layers, a final LayerNorm, a linear head over the
    vocabulary (drawn with ``head_std``)."""
    torch, nn = _torch()
    model = nn.Sequential(nn.Embedding(vocab, width), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width),
                          nn.Tanh(), nn.LayerNorm(width), nn.Linear(width, vocab))
    if head_std is not None:
        nn.init.normal_(model[-1].weight, std=head_std)
        nn.init.zeros_(model[-1].bias)
    ids = torch.randint(0, vocab, (64, 16), generator=torch.Generator().manual_seed(1))
    return model, (ids,)


def saturated_logits_lm():
    """A token model whose head is drawn with std 4 on its normalised stream (a head tied to an
    un-rescaled embedding does the same): logits of std 32, the softmax saturated on most tokens."""
    return _small_lm(4.0)


def small_logits_lm():
    """The same model with its head drawn with std 0.02 (GPT-2's init): the loss at init is ln V."""
    return _small_lm(0.02)


def _token_vit(token_std: float, patches: int = 16, width: int = 64, depth: int = 4):
    """A pre-norm Transformer over patch vectors with a class token and a learned position embedding of the
    given std, read out at the class token."""
    torch, nn = _torch()

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

    return TokenViT(), (_x(64, patches, 48),)


def std1_token_vit():
    """lucidrains' ViT pattern: class token and position embedding drawn with std 1 (torch.randn)."""
    return _token_vit(1.0)


def small_token_vit():
    """The same ViT with class token and position embedding drawn with std 0.02 (timm's and BERT's)."""
    return _token_vit(0.02)


def position_dominated_lm():
    """A causal-free token Transformer block stack whose token embedding is drawn with std 0.02 (GPT-2's)
    but whose learned position embedding is left at nn.Embedding's N(0, 1): the tokens are 2% of the sum."""
    torch, nn = _torch()

    class Tokens(nn.Module):
        def __init__(self, vocab: int = 128, width: int = 64, length: int = 16):
            super().__init__()
            self.tok = nn.Embedding(vocab, width)
            self.pos = nn.Embedding(length, width)
            nn.init.normal_(self.tok.weight, std=0.02)
            self.blocks = nn.Sequential(*[nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(),
                                                        nn.Linear(width, width)) for _ in range(2)])
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab)

        def forward(self, ids):
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
            for block in self.blocks:
                x = x + block(x)
            return self.head(self.norm(x))

    ids = torch.randint(0, 128, (64, 16), generator=torch.Generator().manual_seed(1))
    return Tokens(), (ids,)

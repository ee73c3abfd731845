"""DiT: class-conditional diffusion Transformer on latent patches (Peebles & Xie 2023), size S/2.

Pattern: the noisy latent (N, 4, 32, 32) is cut into 2x2 patches by a strided convolution
(``PatchEmbed``) and a fixed 2-D sine-cosine position table is added; the diffusion step ``t``
(sinusoidal frequencies -> Linear -> SiLU -> Linear, ``TimestepEmbedder``) and the class label ``y``
(an embedding table with one extra "null" row used for classifier-free guidance; in training mode
10% of the labels are replaced by the null class, ``LabelEmbedder.token_drop``) are summed into one
conditioning vector ``c``. Each ``DiTBlock`` is a pre-norm Transformer block (LayerNorm without
affine, multi-head self-attention, GELU(tanh) MLP) with adaLN-Zero conditioning: a SiLU -> Linear
head on ``c`` produces shift, scale and gate for both sub-layers, the normalised input is modulated
as ``x * (1 + scale) + shift`` and each residual branch is multiplied by its gate,
``x = x + gate * attn(modulate(norm(x)))``. A ``FinalLayer`` (adaLN shift/scale, Linear to
patch * patch * 2C) and ``unpatchify`` give the predicted noise and the learned variance
(``learn_sigma``: 8 output channels). Called as ``model(x, t, y)``.

Source: facebookresearch/DiT, ``models.py`` (``modulate``, ``TimestepEmbedder``, ``LabelEmbedder``,
``DiTBlock``, ``FinalLayer``, ``DiT`` with ``initialize_weights``/``unpatchify``,
``get_2d_sincos_pos_embed*``, the ``DiT_S_2`` configuration). The timm modules DiT imports
(``PatchEmbed``, ``Attention``, ``Mlp`` from ``timm.models.vision_transformer``) are re-implemented
here in plain torch with timm's computation (fused ``scaled_dot_product_attention``), and the
position table is computed with torch instead of numpy. Rewritten here. One deliberate difference:
the constructor defaults are DiT-S/2 (depth 12, hidden 384, 6 heads) instead of the original's
DiT-XL/2 defaults, so that the zero-argument class is the benchmark size.

Published init (``initialize_weights``): every Linear xavier-uniform with zero bias (this includes
the packed qkv projection, treated as one 3d x d matrix); the patch-embedding convolution
xavier-uniform on its (out, in*p*p) view, bias zero; the label table N(0, 0.02); both timestep-MLP
weights N(0, 0.02); the adaLN modulation Linear of every block zero (weight and bias), so every gate,
shift and scale is 0 and each block is exactly the identity at init; the final layer's modulation
and its output Linear zero, so the model's output is exactly zero at init. The position table is a
fixed buffer-like parameter (``requires_grad=False``).

Known problem of the original: none; the adaLN-Zero init is the paper's ablation winner (Fig. 5) and
DiT trains with AdamW (lr 1e-4, no weight decay, batch 256) from it. A linter should know that the
zero output and the identity blocks are deliberate: the gradient reaches the zero-initialised
layers (adaLN and final Linear weights) through the non-zero activations they multiply, so training
starts immediately.

Expected linter verdict: no error or warning is justified. At init the output is identically zero,
so a gradient-scale ratio relative to the output is undefined and must be anchored elsewhere (or the
model reported as zero-output, info); every residual branch is gated off (branch share 0,
pass-through blocks), which is the intended adaLN-Zero state, not a vanishing-gradient problem.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


#################################################################################
#            timm building blocks (PatchEmbed, Attention, Mlp) in plain torch     #
#################################################################################


class PatchEmbed(nn.Module):
    """Image to patch tokens: Conv2d with kernel = stride = patch size, flattened to (N, T, D)."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, bias=True):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x):
        x = self.proj(x)  # (N, D, H/p, W/p)
        return x.flatten(2).transpose(1, 2)  # (N, T, D)


class Attention(nn.Module):
    """Multi-head self-attention with one packed qkv projection (timm's ``Attention``)."""

    def __init__(self, dim, num_heads=8, qkv_bias=False, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        assert dim % num_heads == 0, "dim should be divisible by num_heads"
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, head_dim)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """fc1 -> activation -> dropout -> fc2 -> dropout (timm's ``Mlp``)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


#################################################################################
#               Embedding Layers for Timesteps and Class Labels                 #
#################################################################################


class TimestepEmbedder(nn.Module):
    """Scalar diffusion steps -> vectors: sinusoidal frequencies, then a two-layer SiLU MLP."""

    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        """(N,) steps (possibly fractional) -> (N, dim) [cos | sin] features (GLIDE's layout)."""
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half
        ).to(device=t.device)
        args = t[:, None].float() * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    def forward(self, t):
        return self.mlp(self.timestep_embedding(t, self.frequency_embedding_size))


class LabelEmbedder(nn.Module):
    """Class ids -> vectors, with label dropout to the extra null class for classifier-free guidance."""

    def __init__(self, num_classes, hidden_size, dropout_prob):
        super().__init__()
        use_cfg_embedding = dropout_prob > 0
        self.embedding_table = nn.Embedding(num_classes + use_cfg_embedding, hidden_size)
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def token_drop(self, labels, force_drop_ids=None):
        if force_drop_ids is None:
            drop_ids = torch.rand(labels.shape[0], device=labels.device) < self.dropout_prob
        else:
            drop_ids = force_drop_ids == 1
        return torch.where(drop_ids, self.num_classes, labels)

    def forward(self, labels, train, force_drop_ids=None):
        use_dropout = self.dropout_prob > 0
        if (train and use_dropout) or (force_drop_ids is not None):
            labels = self.token_drop(labels, force_drop_ids)
        return self.embedding_table(labels)


#################################################################################
#                                 Core DiT Model                                #
#################################################################################


class DiTBlock(nn.Module):
    """Transformer block with adaptive LayerNorm-Zero conditioning."""

    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0, **block_kwargs):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads, qkv_bias=True, **block_kwargs)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        mlp_hidden_dim = int(hidden_size * mlp_ratio)

        def approx_gelu():
            return nn.GELU(approximate="tanh")

        self.mlp = Mlp(in_features=hidden_size, hidden_features=mlp_hidden_dim, act_layer=approx_gelu, drop=0)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, bias=True))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_size, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        x = modulate(self.norm_final(x), shift, scale)
        return self.linear(x)


class DiT(nn.Module):
    """Diffusion model with a Transformer backbone. Defaults: DiT-S/2 on 4x32x32 latents (the
    original's defaults are DiT-XL/2: depth 28, hidden 1152, 16 heads)."""

    def __init__(
        self,
        input_size=32,
        patch_size=2,
        in_channels=4,
        hidden_size=384,
        depth=12,
        num_heads=6,
        mlp_ratio=4.0,
        class_dropout_prob=0.1,
        num_classes=1000,
        learn_sigma=True,
    ):
        super().__init__()
        self.learn_sigma = learn_sigma
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.patch_size = patch_size
        self.num_heads = num_heads

        self.x_embedder = PatchEmbed(input_size, patch_size, in_channels, hidden_size, bias=True)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob)
        num_patches = self.x_embedder.num_patches
        # Fixed sin-cos position table (not trained).
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, hidden_size), requires_grad=False)

        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, mlp_ratio=mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        self.initialize_weights()

    def initialize_weights(self):
        def _basic_init(module):
            if isinstance(module, nn.Linear):
                torch.nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)

        self.apply(_basic_init)

        pos_embed = get_2d_sincos_pos_embed(self.pos_embed.shape[-1], int(self.x_embedder.num_patches**0.5))
        self.pos_embed.data.copy_(pos_embed.float().unsqueeze(0))

        # Patch embedding initialised like a Linear layer rather than a convolution.
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.constant_(self.x_embedder.proj.bias, 0)

        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)

        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)

        # adaLN-Zero: every block starts as the identity.
        for block in self.blocks:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)

        # Zero output layer.
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].weight, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.linear.weight, 0)
        nn.init.constant_(self.final_layer.linear.bias, 0)

    def unpatchify(self, x):
        """(N, T, p * p * C) -> (N, C, H, W)."""
        c = self.out_channels
        p = self.x_embedder.patch_size[0]
        h = w = int(x.shape[1] ** 0.5)
        assert h * w == x.shape[1]
        x = x.reshape(shape=(x.shape[0], h, w, p, p, c))
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(shape=(x.shape[0], c, h * p, h * p))

    def forward(self, x, t, y):
        """x: (N, C, H, W) latents; t: (N,) diffusion steps; y: (N,) class labels."""
        x = self.x_embedder(x) + self.pos_embed  # (N, T, D)
        t = self.t_embedder(t)  # (N, D)
        y = self.y_embedder(y, self.training)  # (N, D)
        c = t + y
        for block in self.blocks:
            x = block(x, c)
        x = self.final_layer(x, c)  # (N, T, p * p * out_channels)
        return self.unpatchify(x)  # (N, out_channels, H, W)

    def forward_with_cfg(self, x, t, y, cfg_scale):
        """Batched conditional + unconditional pass for classifier-free guidance (the second half of
        the batch carries the null label)."""
        half = x[: len(x) // 2]
        combined = torch.cat([half, half], dim=0)
        model_out = self.forward(combined, t, y)
        eps, rest = model_out[:, : self.in_channels], model_out[:, self.in_channels :]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + cfg_scale * (cond_eps - uncond_eps)
        eps = torch.cat([half_eps, half_eps], dim=0)
        return torch.cat([eps, rest], dim=1)


#################################################################################
#                   Sine/Cosine Positional Embedding Functions                  #
#################################################################################


def get_2d_sincos_pos_embed(embed_dim, grid_size):
    """(grid_size * grid_size, embed_dim) table: half the channels encode the row, half the column."""
    coords = torch.arange(grid_size, dtype=torch.float64)
    grid_w, grid_h = torch.meshgrid(coords, coords, indexing="xy")  # width varies fastest
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid_w)
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid_h)
    return torch.cat([emb_h, emb_w], dim=1)


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    """(M,) positions -> (M, embed_dim) [sin | cos] features."""
    assert embed_dim % 2 == 0
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = pos.reshape(-1)[:, None] * omega[None, :]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def DiT_S_2(**kwargs):
    return DiT(depth=12, hidden_size=384, patch_size=2, num_heads=6, **kwargs)


def small():
    """Two blocks, hidden 32, 2 heads, 8x8 latents, 10 classes; same init."""
    return DiT(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=2, num_classes=10)


def example_inputs(model):
    """(x, t, y) as the training loop feeds the model: a batch of 32 noised SD-VAE latents
    (unit-scale Gaussian, shape from the model), integer diffusion steps in [0, 1000) and class ids.
    32 is the per-GPU batch of the published recipe (256 over 8 GPUs)."""
    gen = torch.Generator().manual_seed(0)
    batch = 32
    size = model.x_embedder.img_size[0]
    x = torch.randn(batch, model.in_channels, size, size, generator=gen)
    t = torch.randint(0, 1000, (batch,), generator=gen)
    y = torch.randint(0, model.y_embedder.num_classes, (batch,), generator=gen)
    return (x, t, y)


if __name__ == "__main__":
    m = DiT()
    print(sum(p.numel() for p in m.parameters() if p.requires_grad), "trainable parameters")
    with torch.no_grad():
        out = m(*example_inputs(m))
    print(tuple(out.shape), float(out.abs().max()))

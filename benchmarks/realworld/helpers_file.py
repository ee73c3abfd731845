"""A model file "full of helper modules", in the style of lucidrains repositories.

Pattern: one file that defines small reusable modules, every constructor with defaults, and a model
that builds them:
- ``Attend(dropout=0., causal=False, flash=False)``: the attention core on already-split heads,
  ``forward(q, k, v, mask=None)`` with q, k, v of shape (batch, heads, seq, dim_head); the
  ``flash`` path calls ``F.scaled_dot_product_attention``, the other one computes softmax(q k^T *
  scale) v by hand (as ``denoising_diffusion_pytorch/attend.py`` and the other ``attend.py`` files of
  these repositories do);
- ``RMSNorm(dim=512)``: ``F.normalize(x, dim=-1) * sqrt(dim) * gamma``;
- ``FeedForward(dim=512, mult=4)``: RMSNorm -> Linear(dim, 2 * inner) -> GEGLU -> dropout ->
  Linear(inner, dim), inner = int(dim * mult * 2 / 3);
- ``Attention(dim=512, heads=8, dim_head=64)``: RMSNorm -> bias-free q / kv projections (the keys and
  values come from ``context`` when one is given, else from x) -> ``Attend`` -> bias-free output
  Linear; ``forward(x, context=None, mask=None)``;
- ``Transformer(dim=512, depth=6, ...)``: pre-norm residual blocks ``x = attn(x) + x; x = ff(x) + x``
  and a final RMSNorm;
- ``TransformerLM(num_tokens=256, dim=512, depth=6, ...)``: byte-level causal LM (token and absolute
  position embeddings, the Transformer, a Linear to logits), as the enwik8 training scripts of these
  repositories use.

Sources: lucidrains/denoising-diffusion-pytorch ``denoising_diffusion_pytorch/attend.py`` (``Attend``:
dropout, flash flag, scaled_dot_product_attention path vs. einsum path) and the model files of
lucidrains repositories such as lucidrains/MEGABYTE-pytorch ``MEGABYTE_pytorch/megabyte.py`` and
lucidrains/audiolm-pytorch ``audiolm_pytorch/audiolm_pytorch.py`` (RMSNorm, FeedForward with mult=4,
Attention(dim, dim_head=64, heads=8) with context / mask, pre-norm Transformer). No single file of
those repositories is reproduced: this is the common structure, rewritten without einops.

Published init: PyTorch defaults everywhere, as in these files (no re-initialisation): Linear
kaiming_uniform(a=sqrt(5)), token and absolute position embeddings nn.Embedding's N(0, 1) (as
MEGABYTE-pytorch's ``token_emb`` and ``pos_embs``), RMSNorm gamma = 1.

Known problem: none in the model for trainability (pre-norm residual blocks with a final norm train at
this size). The point of the file is discovery: gradlint finds every zero-argument class, including
``Attend`` (whose forward needs q, k and v), ``RMSNorm`` and ``GEGLU`` (no depth-bearing layer to
infer an input from) and ``Attention`` / ``Transformer`` (which expect (batch, seq, dim) and get a 2-D
probe).

Expected linter verdict: the model (``TransformerLM``) trains, so no error is justified for it; the
helper modules are not models and should be skipped or reported as not analysable without failing
the analysis of the real model.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

# helpers


def exists(val):
    return val is not None


def default(val, d):
    return val if exists(val) else d


# attention core


class Attend(nn.Module):
    def __init__(self, dropout=0.0, causal=False, flash=False, scale=None):
        super().__init__()
        self.dropout = dropout
        self.causal = causal
        self.flash = flash
        self.scale = scale
        self.attn_dropout = nn.Dropout(dropout)

    def flash_attn(self, q, k, v, mask=None):
        if exists(self.scale):
            q = q * (self.scale / q.shape[-1] ** -0.5)
        attn_mask = None if not exists(mask) else mask[:, None, None, :]
        return F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and not exists(mask),
        )

    def forward(self, q, k, v, mask=None):
        """q, k, v: (batch, heads, seq, dim_head); mask: (batch, seq_k) booleans, True = keep."""
        if self.flash:
            return self.flash_attn(q, k, v, mask=mask)

        scale = default(self.scale, q.shape[-1] ** -0.5)
        sim = torch.matmul(q, k.transpose(-1, -2)) * scale
        neg = -torch.finfo(sim.dtype).max

        if exists(mask):
            sim = sim.masked_fill(~mask[:, None, None, :], neg)

        if self.causal:
            i, j = sim.shape[-2:]
            causal_mask = torch.ones((i, j), dtype=torch.bool, device=sim.device).triu(j - i + 1)
            sim = sim.masked_fill(causal_mask, neg)

        attn = self.attn_dropout(sim.softmax(dim=-1))
        return torch.matmul(attn, v)


# normalisation and feed-forward


class RMSNorm(nn.Module):
    def __init__(self, dim=512):
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class GEGLU(nn.Module):
    def forward(self, x):
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


class FeedForward(nn.Module):
    def __init__(self, dim=512, mult=4, dropout=0.0):
        super().__init__()
        inner_dim = int(dim * mult * 2 / 3)
        self.net = nn.Sequential(
            RMSNorm(dim),
            nn.Linear(dim, inner_dim * 2),
            GEGLU(),
            nn.Dropout(dropout),
            nn.Linear(inner_dim, dim),
        )

    def forward(self, x):
        return self.net(x)


# attention


class Attention(nn.Module):
    def __init__(self, dim=512, heads=8, dim_head=64, dim_context=None, causal=False, dropout=0.0, flash=False):
        super().__init__()
        self.heads = heads
        inner_dim = dim_head * heads
        dim_context = default(dim_context, dim)

        self.norm = RMSNorm(dim)
        self.attend = Attend(dropout=dropout, causal=causal, flash=flash)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim_context, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

    def forward(self, x, context=None, mask=None):
        b, n, _ = x.shape
        h = self.heads

        x = self.norm(x)
        kv_input = default(context, x)

        q = self.to_q(x)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)

        # b n (h d) -> b h n d
        q = q.view(b, n, h, -1).transpose(1, 2)
        k = k.view(b, k.shape[1], h, -1).transpose(1, 2)
        v = v.view(b, v.shape[1], h, -1).transpose(1, 2)

        out = self.attend(q, k, v, mask=mask)

        # b h n d -> b n (h d)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


# transformer


class Transformer(nn.Module):
    def __init__(self, dim=512, depth=6, heads=8, dim_head=64, ff_mult=4, causal=True, attn_dropout=0.0, ff_dropout=0.0):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(
                nn.ModuleList(
                    [
                        Attention(dim=dim, heads=heads, dim_head=dim_head, causal=causal, dropout=attn_dropout),
                        FeedForward(dim=dim, mult=ff_mult, dropout=ff_dropout),
                    ]
                )
            )
        self.norm = RMSNorm(dim)

    def forward(self, x, mask=None):
        for attn, ff in self.layers:
            x = attn(x, mask=mask) + x
            x = ff(x) + x
        return self.norm(x)


# main class


class TransformerLM(nn.Module):
    def __init__(self, num_tokens=256, dim=512, depth=6, heads=8, dim_head=64, ff_mult=4, max_seq_len=1024):
        super().__init__()
        self.max_seq_len = max_seq_len
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(max_seq_len, dim)
        self.transformer = Transformer(dim=dim, depth=depth, heads=heads, dim_head=dim_head, ff_mult=ff_mult)
        self.to_logits = nn.Linear(dim, num_tokens)

    def forward(self, x, mask=None):
        n = x.shape[1]
        positions = torch.arange(n, device=x.device)
        x = self.token_emb(x) + self.pos_emb(positions)
        x = self.transformer(x, mask=mask)
        return self.to_logits(x)


def small():
    """Same model and init: dim 64, depth 2, 4 heads of 16, context 128."""
    return TransformerLM(num_tokens=256, dim=64, depth=2, heads=4, dim_head=16, max_seq_len=128)


if __name__ == "__main__":
    m = TransformerLM()
    print(sum(p.numel() for p in m.parameters()), "parameters")
    ids = torch.randint(0, 256, (2, 64))
    print(tuple(m(ids).shape))

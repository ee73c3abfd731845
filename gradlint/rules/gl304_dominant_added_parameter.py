"""GL304 dominant-added-parameter: a parameter added to the data path (position embedding, class token) outweighs the data at init."""

from __future__ import annotations

from dataclasses import replace

from ..report import Finding, ModelReport, Shift
from . import examples as ex
from .base import Rule, at_least, at_most, fmt, gsc_steps
from .examples import seeded_torch, token_vit


def std1_token_vit():
    """lucidrains' ViT pattern: class token and position embedding drawn with std 1 (torch.randn)."""
    return token_vit(1.0)


def position_dominated_lm():
    """A causal-free token Transformer block stack whose token embedding is drawn with std 0.02 (GPT-2's)
    but whose learned position embedding is left at nn.Embedding's N(0, 1): the tokens are 2% of the sum."""
    torch, nn = seeded_torch()

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


class DominantAddedParameter(Rule):
    """What it does:
    Reports a parameter added to the data path, or concatenated with it as a token, whose elements are
    comparable to the data's at initialisation (root mean square ratio at least 0.5) where the GSC
    falls steeply across the sum: a learned position embedding or class token drawn with std 1.

    Why is this bad?
    The layers after the sum see mostly the parameter, so at initialisation the output depends little
    on the input: the GSC falls across the sum (GL102 names the place). How much that costs depends on
    how much of the data is left. Where the parameter swamps the data, the network must first learn to
    scale the data up: a tutorial GPT whose token embedding is drawn with std 0.02 and whose position
    embedding is left at `nn.Embedding`'s N(0, 1), 50x the tokens, could not read its tokens at all,
    its loss stuck at 4.12 after 600 steps where the same GPT with both at std 0.02 reached 2.78
    (`benchmarks/realworld.py --train`, a Markov text with a floor of 2.35). Where the parameter is
    about as large as the data, the data stays visible and it may even help: lucidrains' ViT with its
    `torch.randn` (std 1) class token and position embedding, as large as its layer-normalised patches,
    reached 0.94 test accuracy on 8x8 digits where the same model with std 0.02 (timm's and BERT's
    init) reached 0.76 in the same steps; large position embeddings let a small model tell its patches
    apart from the first step. A position embedding as large as the token embeddings it joins is the
    norm in language models (nanoGPT draws both with std 0.02) and, with no fall of the GSC, is not
    reported.

    Defaults: `warning` when the parameter is at least 4x the data's scale (`warning`) and the GSC falls
    by 4x (`gsc-drop`) or more across the spine segment where it joins the data; `info` from a ratio of
    0.5 (`ratio`) with the same fall. Measured: the GPT above 50x with a 50x fall (warning); lucidrains'
    ViT 0.94-1.06 with an 8-15x fall (info); with std 0.02: 0.02 and no fall; nanoGPT's position
    embedding about 1 and no fall.

    Example:
    `self.pos = nn.Embedding(block_size, dim)` left at its N(0, 1) default and added to token embeddings
    drawn with std 0.02.

    How to fix:
    Draw the parameter at the data's scale or below: `nn.init.trunc_normal_(..., std=0.02)`, as GPT-2,
    ViT and BERT do, with the token embeddings drawn the same way.

    References:
    Dosovitskiy et al., "An image is worth 16x16 words" (ICLR 2021) and timm's `VisionTransformer`
    (std 0.02 position embedding and class token); Devlin et al., BERT (2019), std 0.02.
    """

    code = "GL304"
    name = "dominant-added-parameter"
    severity = "warning"
    summary = "a parameter added to the data path (position embedding, class token) outweighs the data at init"
    options = {"ratio": 0.5, "warning": 4.0, "gsc-drop": 4.0}
    triggers = (at_least(position_dominated_lm, "warning"), std1_token_vit)
    clean = (ex.small_token_vit, ex.residual_mlp, at_most(std1_token_vit, "info"))

    def check(self, report: ModelReport):
        body = [x for x in report.layers if x.spine_point and not x.head and not x.nested]
        for sh in report.shifts:
            if sh.ratio is None or sh.ratio < self.opts["ratio"] or not sh.spine:
                continue
            drop = next((factor for a, b, factor in gsc_steps(body)
                         if a.depth is not None and b.depth is not None and b.depth < sh.depth <= a.depth), None)
            if drop is not None and drop >= self.opts["gsc-drop"]:
                yield self._at(report, sh, drop, "warning" if sh.ratio >= self.opts["warning"] else "info")

    def _at(self, report: ModelReport, sh: Shift, drop: float, severity: str) -> Finding:
        """The finding, at the line that builds the module whose forward makes the sum."""
        verb = "concatenated with" if sh.name.split(".")[-1].startswith("cat") else "added to"
        if severity == "warning":
            across = (f"; the GSC falls {fmt(drop)}x across it: the layers after the sum hardly see the data, "
                      "which the network must first learn to scale up")
        else:
            across = (f"; the GSC falls {fmt(drop)}x across it: at initialisation the output depends little on "
                      "the input (a remark: at this ratio the data is still visible, and training need not be "
                      "slower)")
        f = self.finding(
            report, severity=severity, value=sh.ratio, threshold=self.opts[severity if severity == "warning" else "ratio"],
            message=f"{sh.parameter} is {verb} the data at {sh.name} with {fmt(sh.ratio)}x the data's scale "
                    f"(root mean square per element){across}",
            recommendation=(f"Draw {sh.parameter} at the data's scale or below: nn.init.trunc_normal_(..., std=0.02) "
                            "as GPT-2, ViT and BERT do (with token embeddings drawn the same way)."
                            if severity == "warning" else
                            f"None needed for training's sake; to make the output depend on the input from the "
                            f"start, draw {sh.parameter} with nn.init.trunc_normal_(..., std=0.02) as ViT and BERT do."),
        )
        return replace(f, path=sh.path or f.path, line=sh.line if sh.path else f.line)

"""GL3xx: initialisation and orthogonality."""

from __future__ import annotations

from dataclasses import replace

from ..report import Finding, ModelReport, Shift
from . import examples as ex
from .base import Rule, at_least, at_most, depth_layers, fmt, pathology, span


class NonOrthogonalInit(Rule):
    """What it does:
    When the model explodes or collapses (see GL1xx, GL2xx), reports that its depth-bearing weights
    are far from orthogonal: the orthogonality defect (coefficient of variation of the squared
    singular values) is large.

    Why is this bad?
    The paper's first recommendation is to train from an orthogonal initial state: a network that
    starts as a composition of orthogonal maps has GSC 1 at every depth and no collapsed domain, so
    depth stops being a liability at the start of training. i.i.d. Gaussian or uniform weights have
    a defect of about 1 when square.

    Defaults: `info`, when the mean defect is above 0.3 and the model also shows a pathology at
    warning level (a GL1xx or GL2xx finding at warning or above). Orthogonal weights alone do not remove the explosion caused by batch norm; the
    message is a pointer, not a diagnosis.

    Example:
    A 30-layer `Linear -> BatchNorm1d -> ReLU` MLP with He (Gaussian) weights: it explodes, and
    every weight has defect ~1.

    How to fix:
    `torch.nn.init.orthogonal_(layer.weight, gain=...)` on each depth-bearing layer; for ReLU nets the
    looks-linear construction `[[A, -A], [-A, A]]` makes the whole network an orthogonal linear map at
    initialisation.

    References:
    Philipp et al. (arXiv 1712.05577), "orthogonal initial state"; Saxe et al. (2014); Balduzzi et al.
    (ICML 2017); Xiao et al. (ICML 2018) for convolutions.
    """

    code = "GL301"
    name = "non-orthogonal-initial-state"
    severity = "info"
    summary = "weights are far from orthogonal in a model that explodes or collapses"
    options = {"info": 0.3}
    what_if = ('looks-linear', 'orthogonal')
    triggers = (ex.batch_relu_mlp,)
    clean = (ex.orthogonal_batch_relu_mlp, ex.residual_mlp)
    after_others = True

    def check_after(self, report: ModelReport, earlier):
        mean = report.summary.mean_orthogonality_defect
        if mean is None or mean <= self.opts["info"] or not pathology(earlier):
            return
        layers = [x for x in depth_layers(report) if x.orthogonality_defect is not None
                  and x.orthogonality_defect > self.opts["info"]]
        worst = max(layers, key=lambda x: x.orthogonality_defect)
        yield self.finding(
            report, layer=worst, value=mean, threshold=self.opts["info"],
            message=f"mean weight orthogonality defect is {fmt(mean)} over {len(depth_layers(report))} layers "
                    f"(worst {fmt(worst.orthogonality_defect)} at {worst.name}; 0 is orthogonal)",
            recommendation=f"Start from an orthogonal initial state: torch.nn.init.orthogonal_(weight) on "
                           f"{span(layers)} (gain to keep each nonlinearity's pre-activation scale); for ReLU "
                           "nets, the looks-linear construction makes the network exactly orthogonal at init.",
        )


class IdenticalInitialWeights(Rule):
    """What it does:
    Flags depth-bearing layers that start with exactly the same weights as another layer, through
    different parameters (copies, not weight tying).

    Why is this bad?
    `copy.deepcopy` of an initialised layer, and containers built that way (`nn.TransformerEncoder`
    and `nn.TransformerDecoder` deep-copy the layer they are given), start every copy from the same
    point. Each copy is then the same random function, and the network's initial state is far less
    random than its parameter count suggests; the copies only drift apart through the different
    inputs they see. Tied weights (one module applied several times, or one parameter shared) are
    intended and not flagged.

    Defaults: `warning` for any group of two or more layers whose weights are equal value for value.
    Constant weights (e.g. zero-initialised layers) are not compared.

    Example:
    `nn.Sequential(*[copy.deepcopy(block) for _ in range(4)])`, or
    `nn.TransformerEncoder(nn.TransformerEncoderLayer(256, 8), num_layers=6)`.

    How to fix:
    Re-initialise each copy (`for layer in encoder.layers: layer.apply(init_fn)`), build each block
    with its own constructor call, or start from an orthogonal initial state drawn per layer
    (`gradlint.init.orthogonal_(model)`).

    References:
    Philipp et al. (arXiv 1712.05577), section 6 (the initial state); PyTorch issues #72253
    "Transformer Initialization" and #86274 "TransformerEncoder/TransformerDecoder has same initial
    parameters for all layers".
    """

    code = "GL302"
    name = "identical-initial-weights"
    severity = "warning"
    summary = "layers start with identical weights (deep copies of one layer)"
    what_if = ("orthogonal",)
    triggers = (ex.cloned_layers_model,)
    clean = (ex.weight_tied_model, ex.residual_mlp)

    def check(self, report: ModelReport):
        layers = depth_layers(report)
        groups: dict[str, list] = {}
        for x in layers:
            if x.copy_of is not None:
                groups.setdefault(x.copy_of, []).append(x)
        for label, copies in groups.items():
            first = next((x for x in layers if (x.weight or x.name) == label), None)
            same = ([first] if first is not None else []) + copies
            names = ", ".join(x.name for x in same[:6]) + (f" and {len(same) - 6} more" if len(same) > 6 else "")
            yield self.finding(
                report, layer=same[0], value=float(len(same)), threshold=2.0,
                message=f"{len(same)} layers start with identical {same[0].op} weights: {names}",
                recommendation="Initialise each copy separately (copy.deepcopy and nn.TransformerEncoder clone "
                               "one initialised layer): re-run the init on every copy, e.g. "
                               "`for layer in model.layers: layer.apply(init_fn)`, or construct each block "
                               "with its own call.",
            )


class OverconfidentOutput(Rule):
    """What it does:
    When the model's output is class or token logits (a linear head whose units are the output's last
    dim, or logits the model's own softmax or log-softmax reads), checks the loss at initialisation:
    the expected cross-entropy against a label drawn uniformly, logsumexp(z) - mean(z), against
    ln C for C classes, and how many samples have a softmax already saturated (top probability at
    least 0.99).

    Why is this bad?
    A freshly initialised classifier knows nothing, so its softmax should be near uniform and its loss
    near ln C: the first thing common training recipes check ("verify the loss at init"). Logits far
    too large make the softmax confidently wrong on almost every sample: the loss starts many times
    ln C, and the first steps are spent shrinking the logits (the "hockey stick" loss curve) instead
    of learning, with gradients that are large and badly conditioned while they do.

    Defaults: `warning` when the softmax is saturated on at least half the samples (`saturated`),
    `error` when the cross-entropy at init is also at least 10 ln C (`error`). A large loss alone is
    not enough: torchvision-style BN ResNets end in a kaiming-initialised classifier whose logits
    start at std 6.6 (akamaster's CIFAR ResNet-110: cross-entropy 3.8 ln C, no sample saturated), and
    they train to 93% with SGD. Measured at init: GPT-2-style heads (std 0.02 on a normalised stream)
    and PyTorch's default `nn.Linear` heads 1.0-1.1 ln C, nothing saturated; a minimal Mamba whose
    N(0, 1) embedding is tied to its head 12 ln C, and a tutorial GPT whose head is tied to an N(0, 1)
    embedding 58 ln C, both saturated on every token. Trained side by side for 600 steps with that
    embedding drawn with std 0.02 (`benchmarks/realworld.py --train`, a Markov text with a floor of
    2.35 nats): the GPT ends at 5.07 as written, worse than a uniform guess (4.17), and at 2.78 with
    the fix; the Mamba at 2.77 against 2.46.

    Example:
    A language model whose `lm_head.weight` is tied to an `nn.Embedding` left at its default N(0, 1).

    How to fix:
    Scale the head down at init (`nn.init.normal_(head.weight, std=0.02)` or zero it, with a zero bias),
    or normalise the stream before the head (a final LayerNorm); with tied weights, initialise the
    shared embedding with std 0.02 as GPT-2 does.

    References:
    Karpathy, "A Recipe for Training Neural Networks" (2019), "verify loss @ init"; Karpathy,
    "Building makemore Part 3" (2022), fixing the initial loss; Radford et al., GPT-2 (2019), std 0.02.
    """

    code = "GL303"
    name = "overconfident-output"
    severity = "error"
    summary = "the softmax of the output logits is saturated at initialisation (loss at init far above ln C)"
    options = {"saturated": 0.5, "error": 10.0}
    triggers = (ex.saturated_logits_lm,)
    clean = (ex.small_logits_lm, ex.shallow_mlp)

    def check(self, report: ModelReport):
        out = report.output
        if not out.logits or out.init_loss is None or not out.uniform_loss:
            return
        ratio = out.init_loss / out.uniform_loss
        if out.saturated_fraction is None or out.saturated_fraction < self.opts["saturated"]:
            return
        severity = "error" if ratio >= self.opts["error"] else "warning"
        head = out.head or "the output layer"
        yield self.finding(
            report, layer=report.layer(out.head) if out.head else None, severity=severity, value=ratio,
            threshold=self.opts["error"] if severity == "error" else None,
            message=f"the loss at initialisation is {fmt(out.init_loss)}, {fmt(ratio)}x ln C = {fmt(out.uniform_loss)} "
                    f"for {out.classes} classes: the logits (std {fmt(out.logit_std)}) saturate the softmax on "
                    f"{out.saturated_fraction:.0%} of the samples, confidently wrong before any training",
            recommendation=f"Scale {head}'s initial weights down (nn.init.normal_(weight, std=0.02), or zero them, "
                           "with a zero bias), or add a final normalisation before it; if the head is tied to an "
                           "embedding, initialise that embedding with std 0.02.",
        )


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
    triggers = (at_least(ex.position_dominated_lm, "warning"), ex.std1_token_vit)
    clean = (ex.small_token_vit, ex.residual_mlp, at_most(ex.std1_token_vit, "info"))

    def check(self, report: ModelReport):
        from .gradient import gsc_steps

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

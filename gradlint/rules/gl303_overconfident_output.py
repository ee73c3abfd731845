"""GL303 overconfident-output: the softmax of the output logits is saturated at initialisation (loss at init far above ln C)."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule, fmt
from .examples import small_lm


def saturated_logits_lm():
    """A token model whose head is drawn with std 4 on its normalised stream (a head tied to an
    un-rescaled embedding does the same): logits of std 32, the softmax saturated on most tokens."""
    return small_lm(4.0)


def small_logits_lm():
    """The same model with its head drawn with std 0.02 (GPT-2's init): the loss at init is ln V."""
    return small_lm(0.02)


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

    Defaults: `warning` when the softmax is saturated on at least half the samples (`saturated`); never
    an error, since how badly it trains depends on the optimiser and the rest of the net, not on how
    far the loss starts: on the project's trainability benchmark a BN ResNet whose head starts 100x too
    large (78 ln C, 97% of samples saturated) trains with SGD to loss 0.43 on the teacher task (0.06
    with its head as drawn; chance 1.61), while the tutorial GPT below (58 ln C) ends worse than a
    uniform guess. A large loss alone is
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
    severity = "warning"
    summary = "the softmax of the output logits is saturated at initialisation (loss at init far above ln C)"
    options = {"saturated": 0.5}
    triggers = (saturated_logits_lm,)
    clean = (small_logits_lm, ex.shallow_mlp)

    def check(self, report: ModelReport):
        out = report.output
        if not out.logits or out.init_loss is None or not out.uniform_loss:
            return
        ratio = out.init_loss / out.uniform_loss
        if out.saturated_fraction is None or out.saturated_fraction < self.opts["saturated"]:
            return
        head = out.head or "the output layer"
        yield self.finding(
            report, layer=report.layer(out.head) if out.head else None, value=ratio,
            message=f"the loss at initialisation is {fmt(out.init_loss)}, {fmt(ratio)}x ln C = {fmt(out.uniform_loss)} "
                    f"for {out.classes} classes: the logits (std {fmt(out.logit_std)}) saturate the softmax on "
                    f"{out.saturated_fraction:.0%} of the samples, confidently wrong before any training",
            recommendation=f"Scale {head}'s initial weights down (nn.init.normal_(weight, std=0.02), or zero them, "
                           "with a zero bias), or add a final normalisation before it; if the head is tied to an "
                           "embedding, initialise that embedding with std 0.02.",
        )

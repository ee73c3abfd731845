"""GL0xx: what gradlint itself could not do fully, and non-finite values in the probe."""

from __future__ import annotations

from ..report import ModelReport
from ..vocabulary import HOOKS
from . import examples as ex
from .base import Rule


class TraceFallback(Rule):
    """What it does:
    Reports that neither torch.fx nor torch.export could capture the model's graph, so gradlint
    recorded its modules with forward hooks, and why each graph tier failed.

    Why is this bad?
    gradlint captures the graph in tiers. torch.fx traces through every module that is not a
    primitive layer and sees everything. When it fails (shape-dependent branches, most Hugging Face
    models), `torch.export` records the same graph at the level of ATen ops, with module paths: the
    analysis is as complete, so that is no finding (the report's header names the tier). When export
    fails too (data-dependent control flow), forward hooks record the leaf modules in the order they
    ran and gradlint treats them as a chain: residual structure is not seen, functional operations
    between modules are not measured (GL005 counts what that hides), and the GSC profile is read at
    the input only.

    Example:
    A forward with data-dependent control flow (`if x.sum() > 0:`) can be captured by neither
    torch.fx nor torch.export.

    How to fix:
    Make the forward capturable by torch.export (move data-dependent branches out of it) for the full
    graph analysis. The message gives each tier's error.

    References:
    torch.fx documentation, "Limitations of Symbolic Tracing"; torch.export documentation,
    "Non-strict export".
    """

    code = "GL001"
    name = "trace-fallback"
    severity = "info"
    summary = "neither torch.fx nor torch.export could capture the model; module hooks recorded it as a chain"
    triggers = (ex.untraceable_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.trace == HOOKS:
            why = report.trace_note or "torch.fx and torch.export could not capture the model"
            yield self.finding(
                report,
                message=f"{why}; recorded modules with forward hooks and treated them as a chain: residual "
                        "structure is not seen, functional operations are not measured, and the GSC profile "
                        "is read at the input only",
                recommendation="Make forward() capturable by torch.export (no data-dependent control flow) for "
                               "the full graph analysis.",
            )


class NonFiniteProbe(Rule):
    """What it does:
    Reports NaN or Inf values in the probe's forward activations or backward gradients.

    Why is this bad?
    A model that produces non-finite values on a standard Gaussian batch at initialisation cannot be
    trained as it is, and every statistic downstream of the first bad node is meaningless.

    Example:
    A `torch.log` of a ReLU output, or a weight initialised with `inf`.

    How to fix:
    Look at the first node named in the message and what feeds it.

    References:
    Philipp et al., "Gradients explode - Deep Networks are shallow - ResNet explained", section 2.
    """

    code = "GL002"
    name = "non-finite-probe"
    severity = "error"
    summary = "NaN or Inf in the probe's activations or gradients"
    triggers = (ex.nonfinite_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.nonfinite:
            first = report.layer(report.nonfinite[0])
            more = f" (and {len(report.nonfinite) - 1} later nodes)" if len(report.nonfinite) > 1 else ""
            yield self.finding(
                report, layer=first,
                message=f"non-finite values (NaN or Inf) first at {report.nonfinite[0]}{more}; the statistics "
                        "downstream of it are not reported",
                recommendation=f"Check the operation at {report.nonfinite[0]} and its inputs at initialisation.",
                value=float(len(report.nonfinite)),
            )


class ZeroOutputAnchor(Rule):
    """What it does:
    Reports that the model's output is exactly zero on the probe batch (typically a zero-initialised
    head), so the GSC is measured relative to the spine point nearest the output whose value is not
    zero.

    Why is this bad?
    It is not a defect: zero-initialised heads are common (vision transformers). It says what the GSC
    figures are relative to.

    Example:
    `nn.init.zeros_(model.head.weight)` with a zero bias.

    How to fix:
    Nothing to fix; read the GSC profile as relative to the anchor named in the message.

    References:
    gradlint metrics spec, "Gradient Scale Coefficient".
    """

    code = "GL003"
    name = "zero-output-anchor"
    severity = "info"
    summary = "the output is zero; GSC is relative to the nearest non-zero spine point"
    triggers = (ex.zero_head_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.output_zero:
            anchor = report.summary.gsc_anchor
            yield self.finding(
                report, layer=report.layer(anchor) if anchor else None,
                message=f"the model's output is all zeros (zero-initialised head?); GSC is measured relative to "
                        f"{anchor}, the spine point nearest the output with a non-zero value",
                recommendation="None needed; GSC figures are relative to the anchor.",
            )


class NoGradient(Rule):
    """What it does:
    Reports that nothing upstream of the output requires a gradient, so no GSC could be measured.

    Why is this bad?
    The gradient-scale rules (GL1xx) could not run: the report is missing its main figure.

    Example:
    A model with no parameter between its token-id inputs and its output (one-hot features
    averaged). Frozen parameters alone do not cause it: the probe measures gradients with respect to
    activations, not parameters.

    How to fix:
    Probe the model with its parameters trainable, or give float example inputs.

    References:
    gradlint metrics spec, "Probe".
    """

    code = "GL004"
    name = "no-gradient"
    severity = "warning"
    summary = "no gradient reaches any recorded node; GSC not measured"
    triggers = (ex.parameter_free_token_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.no_gradient:
            yield self.finding(
                report,
                message="no recorded node has a gradient path to the output (integer inputs and no parameter on "
                    "the path?); gradient-scale figures are missing",
                recommendation="Give float example inputs (example_inputs or --input-shape), or check that the "
                               "output depends on a parameter or a float input.",
            )


class UnmeasuredParameters(Rule):
    """What it does:
    Reports trainable parameters the probe did not measure: parameter coverage, the fraction of
    trainable parameter elements read by an operation the graph capture recognised (depth-bearing
    layers, norms, embeddings, any known torch op on a parameter), is below 1. Names the largest
    modules whose parameters were not seen, and why each was not.

    Why is this bad?
    Every figure in the report comes from what the probe saw. A custom `autograd.Function`, an
    extension op, parameters used outside the recorded modules when gradlint fell back to hooks,
    or parameters the forward never uses are blind spots: the model may explode or collapse there
    and the report would not show it. A run that measured little of the model is not a pass: below
    half the parameters it is an error, whatever the other rules found.

    Defaults: `info` below full coverage (`info`, 1.0), `warning` below 0.9 (`warning`), `error`
    below 0.5 (`error`). Measured: every torch.nn model in the test suite, the stock zoo and the
    real-world corpus (`benchmarks/realworld.py`) have coverage 1.0, but for an SN-GAN discriminator
    whose own spectral-norm wrapper calls `self.module.forward(x)` directly (torch.fx and
    torch.export fail on its `.data` updates, and the hooks see no module call): 0.

    Example:
    A layer computed by `MyMatmul.apply(x, self.weight)` (a custom autograd.Function holding most of
    the weights), or a wrapper module that recomputes its child's weight and calls the child's
    `forward` directly.

    How to fix:
    Express the operation with torch ops so the capture can see it (or wrap only the part that needs
    a custom backward), use torch's own `torch.nn.utils.parametrizations` (spectral_norm, weight_norm,
    orthogonal), which gradlint measures with the weight the forward uses, make forward() traceable
    so that gradlint does not fall back to hooks, or remove parameters the forward does not use.

    References:
    gradlint metrics spec, "Coverage".
    """

    code = "GL005"
    name = "unmeasured-parameters"
    severity = "error"
    summary = "trainable parameters the probe did not measure (parameter coverage below 1)"
    options = {"info": 1.0, "warning": 0.9, "error": 0.5}
    triggers = (ex.opaque_function_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        coverage = report.summary.parameter_coverage
        if coverage is None or coverage >= self.opts["info"]:
            return
        severity = ("error" if coverage < self.opts["error"] else "warning" if coverage < self.opts["warning"]
                    else "info")
        threshold = self.opts[severity]
        reasons: dict[str, list[str]] = {}
        for name, count, why in report.unmeasured[:4]:
            reasons.setdefault(why, []).append(f"{name} ({count:,})")
        names = "; ".join(f"{', '.join(mods)}: {why}" for why, mods in reasons.items())
        more = f"; and {len(report.unmeasured) - 4} more modules" if len(report.unmeasured) > 4 else ""
        verdict = ("most of the model was not analysed, so this report is no pass" if severity == "error"
                   else "the report says nothing about these parts of the model")
        yield self.finding(
            report, severity=severity, value=coverage, threshold=threshold,
            message=f"the probe measured {coverage:.1%} of the trainable parameter elements; not seen: {names}{more}; "
                    f"{verdict}",
            recommendation="Let the capture see these parameters: use torch ops instead of a custom autograd.Function "
                           "or extension op where you can, torch.nn.utils.parametrizations instead of a hand-written "
                           "weight wrapper, make forward() traceable (the header says why it was not), or remove "
                           "parameters the forward does not use.",
        )

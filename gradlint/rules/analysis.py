"""GL0xx: what gradlint itself could not do fully, and non-finite values in the probe."""

from __future__ import annotations

from ..report import ModelReport
from . import examples as ex
from .base import Rule


class TraceFallback(Rule):
    """What it does:
    Reports that torch.fx could not capture the model's graph, so gradlint recorded modules with
    forward hooks instead.

    Why is this bad?
    With hooks, gradlint sees modules but not the functional operations between them, and it treats
    the modules as a chain in the order they ran. Residual merges, the spine and depths are then
    approximate; GSC values at recorded modules are still exact.

    Example:
    A forward with data-dependent control flow (`if x.sum() > 0:`) cannot be traced symbolically.

    How to fix:
    Make the forward traceable (move data-dependent branches out of it), or accept the coarser
    analysis. The message gives the tracing error.

    References:
    torch.fx documentation, "Limitations of Symbolic Tracing".
    """

    code = "GL001"
    name = "trace-fallback"
    severity = "info"
    summary = "torch.fx could not trace the model; modules were recorded with hooks"
    triggers = (ex.untraceable_model,)
    clean = (ex.shallow_mlp,)

    def check(self, report: ModelReport):
        if report.trace != "fx":
            yield self.finding(
                report,
                message=f"{report.trace_note or 'torch.fx tracing failed'}; recorded modules with forward hooks "
                        "and treated them as a chain: residual structure is not seen, and the GSC profile is read "
                        "at the input only",
                recommendation="Make forward() symbolically traceable (no data-dependent control flow) for the "
                               "full graph analysis.",
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

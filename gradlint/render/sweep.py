"""The scaling sweep (``--sweep``) as text lines and as the JSON report's ``sweep`` object."""

from __future__ import annotations

from ..report import clean_number
from ..scaling import Sweep

COLUMNS = (("compositional_depth", "comp. depth"), ("gsc_input", "GSC input"), ("gsc_max", "GSC max"),
           ("explosion_rate", "rate"), ("effective_depth", "eff. depth"), ("min_sign_diversity", "min sign div."),
           ("min_relative_spread", "min spread"))


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3g}"


def _value(v: float) -> str:
    return f"{v:g}"


def lines(sweep: Sweep) -> list[str]:
    """A table of the probed sizes (and the prediction), the fits, the crossings and the width check."""
    values = ", ".join(_value(p.value) for p in sweep.points)
    out = [f"sweep over {sweep.key} = {values} ({sweep.axis} axis)"
           + (f", extrapolated to {sweep.key} = {_value(sweep.predict_at)}" if sweep.predict_at is not None else "")]
    out.append("| " + " | ".join([sweep.key, *(label for _, label in COLUMNS), "verdict"]) + " |")
    out.append("|" + "---|" * (len(COLUMNS) + 2))
    for p in sweep.points:
        codes = ", ".join(p.codes) or "-"
        out.append("| " + " | ".join([_value(p.value), *(_num(p.figures.get(k)) for k, _ in COLUMNS),
                                      f"{p.verdict} ({codes})"]) + " |")
    if sweep.predict_at is not None:
        fits = {f.figure: f for f in sweep.fits}
        out.append("| " + " | ".join([f"{_value(sweep.predict_at)} (predicted)",
                                      *(_num(fits[k].predicted) if k in fits else "-" for k, _ in COLUMNS), ""]) + " |")
    out.append("fits:")
    out += [f"  {_fit_text(f)}" for f in sweep.fits if f.form != "none"]
    for c in sweep.crossings:
        if c.already:
            out.append(f"{c.code} {c.level} ({c.figure} {'>=' if c.code == 'GL101' else '<'} {c.threshold:g}): "
                       f"already at {sweep.key} = {_value(c.at)}")
        elif c.at is not None:
            out.append(f"{c.code} {c.level} ({c.figure} {'>=' if c.code == 'GL101' else '<'} {c.threshold:g}): "
                       f"from {sweep.key} ~ {c.at:.3g}")
        else:
            out.append(f"{c.code} {c.level} ({c.figure} {'>=' if c.code == 'GL101' else '<'} {c.threshold:g}): "
                       f"not before {sweep.key} = {_value(sweep.points[-1].value * 100)}")
    if sweep.scales:
        out.append(f"activation scale at init across {sweep.key} (RMS ~ {sweep.key}^e; flat, |e| < 0.1, is healthy):")
        for s in sweep.scales:
            rms = ", ".join(_num(v) for v in s.rms)
            out.append(f"  {s.layer_type}: e = {s.exponent:+.3f} ({'flat' if s.flat else 'not flat'}; RMS {rms})")
    return out


def _fit_text(f) -> str:
    if f.form == "rate":
        return f"{f.figure}: x {2.718281828 ** f.b:.4g} per layer past the largest size (its own explosion rate)"
    if f.form == "linear":
        return f"{f.figure}: linear, slope {f.b:.4g} (R^2 {f.r2:.3f})"
    if f.form == "exponential":
        return f"{f.figure}: exponential, x {2.718281828 ** f.b:.4g} per unit (R^2 {f.r2:.3f})"
    return f"{f.figure}: power law, exponent {f.b:.3f} (R^2 {f.r2:.3f})"


def as_dict(sweep: Sweep) -> dict:
    return {
        "key": sweep.key,
        "axis": sweep.axis,
        "predict_at": clean_number(sweep.predict_at) if sweep.predict_at is not None else None,
        "points": [{"value": clean_number(p.value), "verdict": p.verdict, "codes": list(p.codes),
                    "figures": {k: clean_number(v) if v is not None else None for k, v in p.figures.items()},
                    "scales": {k: clean_number(v) for k, v in sorted(p.scales.items())}} for p in sweep.points],
        "fits": [{"figure": f.figure, "form": f.form,
                  **{k: clean_number(getattr(f, k)) if getattr(f, k) is not None else None
                     for k in ("a", "b", "r2", "predicted")}} for f in sweep.fits],
        "crossings": [{"code": c.code, "level": c.level, "threshold": clean_number(c.threshold), "figure": c.figure,
                       "at": clean_number(c.at) if c.at is not None else None, "already": c.already}
                      for c in sweep.crossings],
        "scales": [{"layer_type": s.layer_type, "exponent": clean_number(s.exponent), "flat": s.flat,
                    "rms": [clean_number(v) for v in s.rms]} for s in sweep.scales],
    }


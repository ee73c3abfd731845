"""Every rule against the models it carries: its triggers must be flagged, its clean examples not.

The rules judge the frozen reports of their examples (tests/snapshots/, kept up to date by
tests/test_snapshots.py), so these tests need no torch and run in milliseconds.
"""

import functools
import re
from importlib.metadata import EntryPoint

import pytest

import gradlint
from gradlint.report import SEVERITIES, SEVERITY_RANK
from gradlint.rules import RULES, check, default_rules, plugins, registry
from gradlint.rules.base import Bounded, Rule

import snapshots

CASES = [(rule, factory, kind) for rule in RULES for kind in ("triggers", "clean") for factory in getattr(rule, kind)]


@functools.lru_cache(maxsize=None)
def report_of(factory):
    return snapshots.load(getattr(factory, "factory", factory).__name__)


def findings_of(factory):
    return check(report_of(factory))


@pytest.mark.parametrize("rule, factory, kind", CASES,
                         ids=[f"{r.code}-{k}-{f.__name__}" for r, f, k in CASES])
def test_rule_examples(rule, factory, kind):
    codes = [f.code for f in findings_of(factory)]
    ranks = [SEVERITY_RANK[f.severity] for f in findings_of(factory) if f.code == rule.code]
    bound = SEVERITY_RANK[factory.severity] if isinstance(factory, Bounded) else None
    if kind == "triggers":
        assert ranks, f"{rule.code} did not fire on {factory.__name__}: {codes}"
        assert bound is None or max(ranks) >= bound, f"{rule.code} below {factory.severity} on {factory.__name__}"
    elif bound is None:
        assert not ranks, f"{rule.code} fired on its clean example {factory.__name__}"
    else:
        assert not ranks or max(ranks) <= bound, f"{rule.code} above {factory.severity} on {factory.__name__}"


@pytest.mark.parametrize("name", sorted(snapshots.examples()))
def test_findings_of_every_example_are_the_snapshot(name):
    """Code, severity, layer, message and fix of every finding of every example, as stored: a changed
    message fails here and is reviewed as a diff of tests/snapshots/findings/."""
    import difflib

    path = snapshots.FINDINGS / f"{name}.txt"
    assert path.exists(), f"{path} is missing: run `python tests/snapshots.py`"
    stored, now = path.read_text(), snapshots.findings_text(snapshots.load(name))
    diff = "".join(difflib.unified_diff(stored.splitlines(True), now.splitlines(True), "stored", "now"))
    assert now == stored, f"{name}: the findings changed (accept with `python tests/snapshots.py`):\n{diff}"


def test_no_findings_snapshot_without_an_example():
    assert {p.stem for p in snapshots.FINDINGS.glob("*.txt")} == set(snapshots.examples())


def test_one_rule_a_module_named_for_it_with_its_own_examples_beside_it():
    """gradlint/rules/glNNN_name.py holds the rule GLNNN and the example models only it uses; the
    registry finds the rules by walking the package."""
    import importlib
    import inspect
    import pkgutil

    import gradlint.rules as package

    modules = [m.name for m in pkgutil.iter_modules(package.__path__) if re.fullmatch(r"gl\d{3}_\w+", m.name)]
    assert len(modules) == len(RULES)
    for rule in RULES:
        assert rule.__module__ == f"gradlint.rules.{rule.code.lower()}_{rule.name.replace('-', '_')}"
        module = importlib.import_module(rule.__module__)
        assert [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Rule)
                and c.__module__ == module.__name__ and "code" in vars(c)] == [rule]
        users = {}
        for other in RULES:
            for entry in (*other.triggers, *other.clean):
                users.setdefault(getattr(entry, "factory", entry), set()).add(other.code)
        for factory, codes in users.items():
            if codes == {rule.code}:
                assert inspect.getmodule(factory) is module, f"{factory.__name__} belongs beside {rule.code}"


def test_every_rule_has_examples_both_ways():
    for rule in RULES:
        assert rule.triggers and rule.clean, f"{rule.code} needs trigger and clean examples"


def test_codes_and_names_are_unique_and_well_formed():
    codes = [r.code for r in RULES]
    names = [r.name for r in RULES]
    assert len(set(codes)) == len(codes) and len(set(names)) == len(names)
    assert codes == sorted(codes)  # the registry is in code order
    for rule in RULES:
        assert re.fullmatch(r"GL\d{3}", rule.code)
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", rule.name)
        assert rule.severity in SEVERITIES
        assert rule.summary and not rule.summary.endswith(".")
        assert all(re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", k) for k in rule.options)


def test_findings_carry_numbers_and_a_concrete_fix():
    for factory in {f for r in RULES for f in r.triggers}:
        report = report_of(factory)
        for f in findings_of(factory):
            assert f.message and f.recommendation
            assert f.severity in SEVERITIES
            if not f.code.startswith("GL0"):  # GL0xx report what gradlint could not do, not a measurement
                assert re.search(r"\d", f.message), f"{f.code}: no measured number in {f.message!r}"
            assert f.layer is None or report.layer(f.layer) is not None


def test_rule_options_override_defaults_and_unknown_options_are_refused():
    gl101 = next(r for r in RULES if r.code == "GL101")
    report = report_of(gl101.triggers[0])  # the batch-ReLU MLP
    (default,) = [f for f in check(report) if f.code == "GL101"]
    relaxed = [r for r in default_rules() if r.code != "GL101"] + [gl101(error=1e9, warning=1e8, info=1e7, rate=10.0)]
    assert default.severity in ("warning", "error")
    assert "GL101" not in [f.code for f in check(report, relaxed)]
    with pytest.raises(ValueError, match="unknown option"):
        gl101(eror=1.0)


class AcmeWideLayers(Rule):
    """What it does:
    Flags any layer wider than 48 units (a stand-in third-party rule).

    Why is this bad?
    It is not; this rule exists to test the plugin mechanism.

    Example:
    `nn.Linear(64, 64)`.

    How to fix:
    Nothing to fix.

    References:
    None.
    """

    code = "ACME101"
    name = "acme-wide-layers"
    severity = "info"
    summary = "a layer wider than 48 units"
    options = {"width": 48}

    def check(self, report):
        wide = [x for x in report.layers if x.kind == "layer" and (x.width or 0) > self.opts["width"]]
        if wide:
            yield self.finding(report, layer=wide[0], message=f"{wide[0].name} is {wide[0].width} wide",
                               recommendation="none", value=float(wide[0].width))


@pytest.fixture
def fake_plugins(monkeypatch):
    """Register entry points in the gradlint.rules group without installing anything."""

    def install(*eps: EntryPoint):
        monkeypatch.setattr(plugins, "entry_points", lambda group: [e for e in eps if e.group == group])
        plugins._load.cache_clear()

    yield install
    plugins._load.cache_clear()


def test_third_party_rules_plug_in_through_entry_points(fake_plugins):
    fake_plugins(EntryPoint("ACME", f"{__name__}:AcmeWideLayers", "gradlint.rules"))
    assert registry()[-1] is AcmeWideLayers
    report = snapshots.load("residual_mlp")  # the healthy residual MLP, width 64
    assert [f.code for f in check(report)] == ["ACME101"]


@pytest.mark.parametrize("name, value, message", [
    ("ACME", f"{__name__}:RULES", "is not ACME followed by three digits"),      # claims GL codes
    ("acme", f"{__name__}:AcmeWideLayers", "must be an upper-case code prefix"),
    ("ACME", "no_such_module_xyz:Rule", "failed to load"),
    ("ACME", f"{__name__}:findings_of", "is not a gradlint Rule class"),
])
def test_bad_plugins_are_one_line_errors_naming_the_plugin(fake_plugins, name, value, message):
    fake_plugins(EntryPoint(name, value, "gradlint.rules"))
    with pytest.raises(gradlint.GradlintError, match=message) as info:
        registry()
    assert "\n" not in str(info.value)


def test_collapse_rules_leave_to_gl201_exactly_the_layers_its_configured_level_takes():
    from gradlint.rules.gl201_collapsing_domain import DomainCollapse
    from gradlint.rules.gl202_sign_diversity_collapse import SignDiversityCollapse

    report = snapshots.load("default_init_relu_mlp")
    default = [f for f in check(report, [DomainCollapse(), SignDiversityCollapse()]) if f.code == "GL202"]
    lowered = [f for f in check(report, [DomainCollapse(warning=1e-12, error=1e-13), SignDiversityCollapse()])
               if f.code == "GL202"]
    assert "with an uncollapsed domain" in default[0].message and "of 5 nonlinearities" in default[0].message
    # GL201 at a lower level takes fewer layers, so GL202 judges the rest: none is left to no rule
    assert "of 20 nonlinearities" in lowered[0].message

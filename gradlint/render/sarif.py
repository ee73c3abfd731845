"""``--format sarif``: SARIF 2.1.0 for code scanning (GitHub, GitLab, IDE viewers).

One run.  ``tool.driver.rules`` lists every enabled rule with its documentation; each finding is a
result at its layer's line, its file relative to the repository root (``%SRCROOT%``); a target that
could not be analysed is a tool execution notification.  Byte-identical across runs.
"""

from __future__ import annotations

import hashlib
import json

from .. import __version__, ruledocs
from ..report import Finding, TargetResult, clean_number
from . import Output, message_and_fix, model_key, relative_to_root, target_file

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/gradlint/gradlint"
# Where the generated rule pages (rules/GL101.md, `python -m gradlint.ruledocs`) are published.
RULES_URL = "https://github.com/gradlint/gradlint/blob/main/rules/"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SRCROOT = "%SRCROOT%"
FINGERPRINT = "gradlintFinding/v1"


def _rule(rule) -> dict:
    cls = type(rule)
    try:
        what, page = ruledocs.sections(cls)["What it does"], ruledocs.page(cls)
    except ValueError:  # a plugin rule whose docstring lacks the sections: its summary is all there is
        what = page = rule.summary
    descriptor = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": what},
        "help": {"text": page, "markdown": page},
        "defaultConfiguration": {"level": LEVEL[rule.severity],
                                 "parameters": {k: clean_number(v) for k, v in rule.opts.items()}},
    }
    if cls.__module__.startswith("gradlint."):  # plugins publish their pages elsewhere
        descriptor["helpUri"] = f"{RULES_URL}{rule.code}.md"
    return descriptor


def _fingerprint(f: Finding, model: str) -> str:
    # Never the line: a finding keeps its identity when code above its layer moves.
    key = "\0".join((f.code, model, f.layer or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _location(file: str | None, line: int | None) -> dict:
    place: dict = {"artifactLocation": {"uri": file, "uriBaseId": SRCROOT}}
    if line is not None:
        place["region"] = {"startLine": line}
    return {"physicalLocation": place}


def _result(r: TargetResult, f: Finding, index: dict[str, int], root, suppressed: bool) -> dict:
    model = model_key(r, root)
    logical = [{"name": model, "kind": "module"}]
    if f.layer:
        logical.append({"name": f.layer, "fullyQualifiedName": f"{model}.{f.layer}", "kind": "member"})
    file = relative_to_root(f.path, root)
    location = _location(file, f.line) if file else {}
    result = {
        "ruleId": f.code,
        "level": LEVEL[f.severity],
        "message": {"text": message_and_fix(f)},
        "locations": [{**location, "logicalLocations": logical}],
        "partialFingerprints": {FINGERPRINT: _fingerprint(f, model)},
        "properties": {"value": clean_number(f.value), "threshold": clean_number(f.threshold)},
    }
    if f.code in index:
        result["ruleIndex"] = index[f.code]
    if suppressed:  # a `# gradlint: ignore[...]` comment: code scanning shows it as dismissed
        result["suppressions"] = [{"kind": "inSource"}]
    return result


def _notification(r: TargetResult, root) -> dict:
    note = {"level": "error", "message": {"text": r.error.message},
            "properties": {"target": r.target, "kind": r.error.kind}}
    file = target_file(r.target, root)
    if file:
        note["locations"] = [_location(file, None)]
    return note


def _skipped(target: str, why: str, root) -> dict:
    note = {"level": "note", "message": {"text": f"skipped {target}: {why}"},
            "properties": {"target": target, "kind": "skipped"}}
    file = target_file(target, root)
    if file:
        note["locations"] = [_location(file, None)]
    return note


def render(output: Output) -> str:
    rules = list(output.rules)
    index = {rule.code: i for i, rule in enumerate(rules)}
    results = [_result(r, f, index, output.root, hidden)
               for r in output.results
               for hidden, found in ((False, r.findings), (True, r.suppressed)) for f in found]
    failed = [r for r in output.results if not r.ok]
    run = {
        "tool": {"driver": {"name": "gradlint", "version": __version__, "semanticVersion": __version__,
                            "informationUri": INFORMATION_URI, "rules": [_rule(rule) for rule in rules]}},
        # No absolute path in any output: %SRCROOT% is left for the consumer to bind (code scanning binds
        # it to the checkout; a viewer asks for the folder).
        "originalUriBaseIds": {SRCROOT: {"description": {"text": "The repository root."}}},
        "invocations": [{"executionSuccessful": not failed,
                         "toolExecutionNotifications": [_notification(r, output.root) for r in failed]
                         + [_skipped(target, why, output.root) for target, why in output.skipped]}],
        "results": results,
    }
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"

"""``--format github``: GitHub Actions workflow commands, one annotation per finding (at most ``CAP`` of
each type, and a roll-up line for the rest).

    ::error file=examples/deep_mlp.py,line=13,title=gradlint GL101::GSC reaches 1.08e+04 ...%0Afix: ...

Paths are relative to the repository root (GitHub's workspace).  A target that could not be
analysed is an ``::error`` on its file, without a line.  Escaping is the Actions toolkit's
(``@actions/core`` command.ts): data escapes ``%``, CR and LF; properties also ``:`` and ``,``.
"""

from __future__ import annotations

from collections import Counter

from ..report import Finding, TargetResult
from . import Output, message_and_fix, relative_to_root, target_file

COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: object) -> str:
    """``::name key=value,...::message``; properties that are None are left out."""
    given = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{name}{' ' + given if given else ''}::{escape_data(message)}"


def _finding(f: Finding, root) -> str:
    file = relative_to_root(f.path, root)
    return command(COMMAND[f.severity], message_and_fix(f), file=file, line=f.line if file else None,
                   title=f"gradlint {f.code}")


def _failure(r: TargetResult, root) -> str:
    return command("error", r.error.message, file=target_file(r.target, root),
                   title=f"gradlint {r.error.kind} error")


# GitHub shows at most this many annotations of each type (error, warning, notice) for one step; the
# rest are dropped without a word.  Past it, one notice says how many were left out and where they are.
CAP = 10


def render(output: Output) -> str:
    lines: list[tuple[str, str]] = []           # (command, line), in report order
    for r in output.results:
        lines += [(COMMAND[f.severity], _finding(f, output.root)) for f in r.findings]
        if not r.ok:
            lines.append(("error", _failure(r, output.root)))
    lines += [("notice", command("notice", why, file=target_file(target, output.root),
                                 title="gradlint skipped a module")) for target, why in output.skipped]
    return "".join(line + "\n" for line in capped(lines))


def capped(lines: list[tuple[str, str]]) -> list[str]:
    """At most ``CAP`` lines of each command, in order; when some are left out, the last notice slot goes
    to a roll-up line that counts them (the job summary and the SARIF upload list every finding)."""
    total = Counter(name for name, _ in lines)
    over = any(n > CAP for n in total.values())
    room = {name: CAP - (over and name == "notice") for name in total}
    shown, used = [], Counter()
    for name, line in lines:
        if used[name] < room[name]:
            shown.append(line)
        used[name] += 1
    if over:
        left = {name: n - room[name] for name, n in total.items() if n > room[name]}
        counts = ", ".join(f"{n} {name}{'s' if n > 1 else ''}" for name, n in left.items())
        shown.append(command("notice", f"{sum(left.values())} more gradlint annotations not shown ({counts}): GitHub "
                             f"shows {CAP} of each type per step; the job summary and the SARIF report list them all",
                             title="gradlint: more findings"))
    return shown


LEVEL = {"error": "error", "warning": "warning", "note": "notice", "none": "notice"}


def from_sarif(doc: dict) -> str:
    """The annotations of a SARIF report that gradlint wrote (``--format sarif``), capped as ``render``
    caps them: a workflow that uploads the SARIF annotates the pull request from the same run, without
    probing the models again.  Failed targets (tool execution notifications) are errors on their file."""
    lines: list[tuple[str, str]] = []
    for run in doc.get("runs", []):
        for result in run.get("results", []):
            name = LEVEL.get(result.get("level", "warning"), "warning")
            file, line = _place(result)
            lines.append((name, command(name, result["message"]["text"], file=file, line=line if file else None,
                                        title=f"gradlint {result.get('ruleId', '')}".rstrip())))
        for invocation in run.get("invocations", []):
            for note in invocation.get("toolExecutionNotifications", []):
                name = LEVEL.get(note.get("level", "error"), "error")
                file, _ = _place(note)
                kind = note.get("properties", {}).get("kind")
                lines.append((name, command(name, note["message"]["text"], file=file,
                                            title=f"gradlint {kind} error" if kind else "gradlint")))
    return "".join(line + "\n" for line in capped(lines))


def _place(item: dict) -> tuple[str | None, int | None]:
    for location in item.get("locations", []):
        physical = location.get("physicalLocation")
        if physical:
            return physical["artifactLocation"].get("uri"), physical.get("region", {}).get("startLine")
    return None, None


def main(argv: list[str] | None = None) -> int:
    """``python -m gradlint.render.github REPORT.sarif``: print the report's annotations (the Action's step)."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m gradlint.render.github REPORT.sarif\n")
        return 2
    try:
        with open(args[0], encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"gradlint: error: {args[0]}: not a readable SARIF report ({exc}); write one with "
                         "gradlint --format sarif --output FILE\n")
        return 2
    sys.stdout.write(from_sarif(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

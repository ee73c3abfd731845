"""``gradlint --fix``: edit the model code so that findings go away, keeping only edits that are proven.

``plan`` (``gradlint.fix.plan``) reads the fixes from the results; ``source`` makes each edit with
libcst.  ``apply`` writes the edits (atomically), re-runs the probe on every target of the run, and
keeps a fix only when its finding is gone and no new finding (or failure) appeared; otherwise the file
is restored byte for byte.  All fixes are first tried together; when that is not clean, each is tried
on top of those kept so far.  Every edit is made on the original text, bottom up, so line numbers
recorded by the first probe stay right.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from ..paths import display_path
from ..report import TargetResult
from .plan import Edit, Fix, plan
from .source import Unfixable, insert_init, set_keyword

__all__ = ["Edit", "Fix", "Fixing", "Outcome", "apply", "plan"]


@dataclass(frozen=True)
class Outcome:
    fix: Fix
    applied: bool
    reason: str | None = None          # why it was not applied
    files: tuple[str, ...] = ()        # the files it changed (display paths)


@dataclass
class Fixing:
    """What ``apply`` did: an outcome per fix, the results after the kept edits, and the diff."""

    outcomes: list[Outcome]
    results: list[TargetResult]
    diff: str = ""
    changed: list[str] = field(default_factory=list)   # display paths of the files changed


def apply(results: list[TargetResult], fixes: list[Fix], rerun: Callable[[], list[TargetResult]], *,
          unsafe: bool, write: bool) -> Fixing:
    """Try ``fixes`` (the unsafe ones only with ``unsafe``) on the files, checking each by ``rerun``;
    leave the kept edits written when ``write``, else restore every file (``--diff``)."""
    outcomes: dict[int, Outcome] = {}
    files = _Files()
    candidates = []
    for i, fix in enumerate(fixes):
        reason = fix.reason or (None if fix.safe or unsafe else "an unsafe fix; --unsafe-fixes applies it")
        reason = reason or files.check(fix)
        if reason:
            outcomes[i] = Outcome(fix, False, reason)
        else:
            candidates.append(i)
    try:
        after, kept = _verified(results, [(i, fixes[i]) for i in candidates], files, rerun, outcomes)
        diff, changed = files.diff(kept)
        if not write:
            files.restore()
    except BaseException:
        files.restore()
        raise
    final = [outcomes[i] for i in range(len(fixes))]
    final = [Outcome(o.fix, o.applied, o.reason, _touched(o, changed)) for o in final]
    return Fixing(final, after, diff, changed)


def _touched(o: Outcome, changed: list[str]) -> tuple[str, ...]:
    mine = {display_path(e.file) for e in o.fix.edits}
    return tuple(p for p in changed if p in mine) if o.applied else ()


def _verified(results, candidates, files, rerun, outcomes):
    """Apply the candidates, all together first, then one by one; fill ``outcomes``.  The results after
    the edits kept, and those edits."""
    before = _keys(results)
    if not candidates:
        return results, []
    edits = [e for _, fix in candidates for e in fix.edits]
    after, problem = _trial(files, edits, rerun, before, [fix for _, fix in candidates])
    good = [(i, fix) for i, fix in candidates if problem[fix] is None]
    kept = [e for _, fix in good for e in fix.edits]
    # Clean together; or the only trouble is findings left whose edits the others make anyway (several
    # findings one gradlint.init call answers): the files hold exactly the kept edits, checked.
    if good and set(edits) <= set(kept) and all(p.startswith(_LEFT) for p in problem.values() if p):
        for i, fix in candidates:
            outcomes[i] = Outcome(fix, problem[fix] is None, problem[fix])
        return after, kept
    return _one_by_one(results, candidates, files, rerun, outcomes, before)


def _one_by_one(results, candidates, files, rerun, outcomes, before):
    """Each fix on top of those kept so far, kept when clean."""
    current, kept = results, []
    for i, fix in candidates:
        if (fix.target, fix.code) not in _keys(current):   # an earlier fix removed it already
            outcomes[i] = Outcome(fix, True)
            continue
        if set(fix.edits) <= set(kept):   # nothing to write that is not written and checked already
            outcomes[i] = Outcome(fix, False, f"{_LEFT} ({fix.code} still found in {fix.target})")
            continue
        trial_after, problem = _trial(files, kept + list(fix.edits), rerun, before, [fix])
        if problem[fix] is None:
            kept += fix.edits
            current = trial_after
        outcomes[i] = Outcome(fix, problem[fix] is None, problem[fix])
    files.write(kept)
    return current, kept


_LEFT = "the edit did not remove the finding"


def _trial(files, edits, rerun, before: set, fixes: list[Fix]):
    """Write ``edits`` (on the original texts), re-run, and say for each fix what is wrong (None: nothing)."""
    files.write(edits)
    after = rerun()
    broken = [r for r in after if not r.ok]
    new = sorted(_keys(after) - before)
    problem = {}
    for fix in fixes:
        if broken:
            problem[fix] = f"after the edit {broken[0].target} could not be analysed ({broken[0].error.message})"
        elif (fix.target, fix.code) in _keys(after):
            problem[fix] = f"{_LEFT} ({fix.code} still found in {fix.target})"
        elif new:
            problem[fix] = "the edit brings a new finding: " + ", ".join(f"{c} in {t}" for t, c in new)
        else:
            problem[fix] = None
    return after, problem


def _keys(results: list[TargetResult]) -> set[tuple[str, str]]:
    return {(r.target, f.code) for r in results if r.ok for f in r.findings}


class _Files:
    """The files fixes edit: their original bytes and times, kept to restore them exactly."""

    def __init__(self):
        self.original: dict[str, bytes] = {}
        self.times: dict[str, tuple[int, int]] = {}
        self.written: set[str] = set()

    def check(self, fix: Fix) -> str | None:
        """Why ``fix``'s edits cannot be made on the original texts; None when they can."""
        try:
            for path in {e.file for e in fix.edits}:
                self._edited(path, [e for e in fix.edits if e.file == path])
        except Unfixable as exc:
            return str(exc)
        except OSError as exc:
            return f"{display_path(exc.filename or '')}: cannot be read ({exc.strerror})"
        except UnicodeDecodeError:
            return "the file is not UTF-8"
        return None

    def text(self, path: str) -> str:
        if path not in self.original:
            with open(path, "rb") as fh:
                self.original[path] = fh.read()
            st = os.stat(path)
            self.times[path] = (st.st_atime_ns, st.st_mtime_ns)
        return self.original[path].decode("utf-8")

    def _edited(self, path: str, edits: list[Edit]) -> str:
        """The original text of ``path`` with ``edits``: keyword edits bottom up, then insertions."""
        text = self.text(path)
        edits = list(dict.fromkeys(edits))
        for e in sorted((e for e in edits if e.keyword), key=lambda e: -e.keyword.line):
            text = set_keyword(text, e.keyword)
        for e in (e for e in edits if e.init):
            text = insert_init(text, *e.init)
        return text

    def write(self, edits: list[Edit]) -> None:
        """Every file to its original text with ``edits`` (a file without edits back to its original)."""
        for path in sorted(set(self.original) | {e.file for e in edits}):
            mine = [e for e in edits if e.file == path]
            data = self._edited(path, mine).encode("utf-8") if mine else self.original[path]
            if path in self.written or data != self.original[path]:
                _replace(path, data)
                self.written.add(path)
                if data == self.original[path]:
                    os.utime(path, ns=self.times[path])
                    self.written.discard(path)

    def restore(self) -> None:
        self.write([])

    def diff(self, edits: list[Edit]) -> tuple[str, list[str]]:
        """The unified diff of ``edits`` against the original texts, and the files it changes."""
        out, changed = [], []
        for path in sorted({e.file for e in edits}):
            old, new = self.text(path), self._edited(path, [e for e in edits if e.file == path])
            if old != new:
                shown = display_path(path)
                changed.append(shown)
                out += difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{shown}", f"b/{shown}")
        return "".join(out), changed


def _replace(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then a rename), keeping its mode."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".gradlint-fix-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

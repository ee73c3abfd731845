"""Source edits for ``gradlint --fix``, made with libcst so that comments and formatting survive.

Each function takes a file's text and returns the edited text (the same text when there is nothing to
do), or raises ``Unfixable`` saying why the edit cannot be made.  Nothing here imports torch or runs
the user's code: the edits are found from the construction sites the probe recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider


class Unfixable(Exception):
    """The edit cannot be made safely; the message says why (one line)."""


@dataclass(frozen=True)
class Keyword:
    """Set ``name=value`` on the calls to ``callee`` that start at (or span) ``line``."""

    line: int
    callees: tuple[str, ...]   # accepted callee names (the last part: Conv2d for nn.Conv2d, torch.nn.Conv2d)
    name: str                  # bias
    value: str                 # False
    position: int | None = None   # the keyword's positional index, if it may be given positionally
    replaces: tuple[str, ...] = ()   # existing values it may replace (True); any other value is left, refused
    count: int | None = None   # how many such calls the line must hold (the layers built there), when known


def callee_name(func: cst.BaseExpression) -> str | None:
    """``Conv2d`` for ``nn.Conv2d``, ``torch.nn.Conv2d`` and ``Conv2d``."""
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return None


def _calls_at(wrapper: MetadataWrapper, line: int, callees: tuple[str, ...]) -> list[cst.Call]:
    """The calls to one of ``callees`` starting at ``line``; else the innermost ones spanning it."""
    positions = wrapper.resolve(PositionProvider)
    found = [(node, positions[node]) for node in positions
             if isinstance(node, cst.Call) and callee_name(node.func) in callees]
    starting = [n for n, p in found if p.start.line == line]
    if starting:
        return starting
    spanning = [(n, p) for n, p in found if p.start.line <= line <= p.end.line]
    if not spanning:
        return []
    inner = max(p.start.line for _, p in spanning)
    return [n for n, p in spanning if p.start.line == inner]


def set_keyword(source: str, edit: Keyword) -> str:
    """``source`` with ``edit.name=edit.value`` on every call it names (already so: unchanged)."""
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError as exc:
        raise Unfixable(f"the file does not parse ({str(exc).splitlines()[0]})") from None
    calls = _calls_at(wrapper, edit.line, edit.callees)
    if not calls:
        raise Unfixable(f"no call to {' or '.join(edit.callees)} found at line {edit.line}")
    if edit.count is not None and len(calls) != edit.count:
        raise Unfixable(f"line {edit.line} holds {len(calls)} calls to {edit.callees[0]}, not the "
                        f"{edit.count} that built the layers; the site is ambiguous")
    new = {id(c): _with_keyword(c, edit) for c in calls}
    if all(new[id(c)] is c for c in calls):
        return source
    return wrapper.module.visit(_Replace(new)).code


class _Replace(cst.CSTTransformer):
    def __init__(self, new: dict[int, cst.Call]):
        super().__init__()
        self.new = new

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        return self.new.get(id(original), updated)


def _with_keyword(call: cst.Call, edit: Keyword) -> cst.Call:
    """``call`` with the keyword set; the same object when it already is."""
    args = list(call.args)
    if any(a.star for a in args):
        raise Unfixable(f"the call at line {edit.line} passes *args or **kwargs; {edit.name}= may be among them")
    for i, a in enumerate(args):
        positional = a.keyword is None and i == edit.position
        if (a.keyword is not None and a.keyword.value == edit.name) or positional:
            shown = cst.Module([]).code_for_node(a.value)
            if shown == edit.value:
                return call
            if shown not in edit.replaces:
                raise Unfixable(f"{edit.name} is given as {shown} at line {edit.line}; not an expression "
                                f"gradlint replaces")
            args[i] = a.with_changes(value=cst.parse_expression(edit.value))
            return call.with_changes(args=args)
    return call.with_changes(args=_appended(args, edit))


def _appended(args: list[cst.Arg], edit: Keyword) -> list[cst.Arg]:
    """``args`` plus ``name=value`` at the end, in the call's own layout: on a line of its own when the
    arguments are one per line (keeping a trailing comma), else after ``, ``."""
    new = cst.Arg(value=cst.parse_expression(edit.value), keyword=cst.Name(edit.name),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    if not args:
        return [new]
    last = args[-1]
    if isinstance(last.comma, cst.Comma):   # a trailing comma: the new argument takes it, and its layout
        between = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else \
            cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        return [*args[:-1], last.with_changes(comma=between), new.with_changes(comma=last.comma)]
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [*args[:-1], last.with_changes(comma=comma), new]


def insert_init(source: str, function: str, call: str) -> str:
    """``source`` with ``call(model)`` (``gradlint.init.orthogonal_``) applied to what the top-level
    builder ``function`` returns, before each of its returns: a statement of its own before ``return
    model``, the returned expression wrapped otherwise; and ``import gradlint.init`` at the top."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise Unfixable(f"the file does not parse ({str(exc).splitlines()[0]})") from None
    defs = [s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == function]
    if len(defs) != 1:
        raise Unfixable(f"no top-level function {function}() builds the model; there is no place to insert "
                        f"{call}(model) after its construction")
    if call in module.code_for_node(defs[0]):
        return source
    inserter = _Inserter(cst.parse_expression(call))
    edited = defs[0].visit(inserter)
    if not inserter.returns:
        raise Unfixable(f"{function}() has no return statement with a value to insert {call}(model) before")
    body = [edited if s is defs[0] else s for s in module.body]
    return _with_import(module.with_changes(body=body), call.rsplit(".", 1)[0]).code


class _Inserter(cst.CSTTransformer):
    """Inside one function (not the functions or classes it defines), ``return m`` gets ``call(m)`` before it,
    ``return <expression>`` becomes ``return call(<expression>)``."""

    def __init__(self, call: cst.BaseExpression):
        super().__init__()
        self.call = call
        self.depth = 0
        self.returns = 0

    def visit_FunctionDef(self, node) -> bool:
        self.depth += 1
        return self.depth == 1

    def leave_FunctionDef(self, original, updated):
        self.depth -= 1
        return updated

    def visit_ClassDef(self, node) -> bool:
        return False

    def visit_Lambda(self, node) -> bool:
        return False

    def leave_SimpleStatementLine(self, original, updated):
        only = updated.body[0] if len(updated.body) == 1 else None
        if isinstance(only, cst.Return) and isinstance(only.value, cst.Name):
            self.returns += 1
            applied = cst.Expr(self._applied(only.value))
            return cst.FlattenSentinel([updated.with_changes(body=[applied], leading_lines=()), updated])
        return updated.with_changes(body=self._wrapped(updated.body))

    def leave_SimpleStatementSuite(self, original, updated):   # `if x: return m`
        return updated.with_changes(body=self._wrapped(updated.body))

    def leave_Return(self, original, updated):
        if updated.value is None or isinstance(updated.value, cst.Name):
            return updated   # a returned name: its statement line applies the call first (above)
        self.returns += 1
        return updated.with_changes(value=self._applied(updated.value))

    def _wrapped(self, body):
        """Returns of a name among several statements of one line: ``return call(m)``."""
        out = []
        for s in body:
            if isinstance(s, cst.Return) and isinstance(s.value, cst.Name):
                self.returns += 1
                s = s.with_changes(value=self._applied(s.value))
            out.append(s)
        return out

    def _applied(self, value: cst.BaseExpression) -> cst.Call:
        return cst.Call(func=self.call, args=[cst.Arg(value)])


def _with_import(module: cst.Module, name: str) -> cst.Module:
    """``module`` with ``import name`` after its last top-level import (after the docstring and
    ``from __future__`` imports when it has none); unchanged when it imports ``name`` already."""
    if module.code.count(f"import {name}\n") or f"import {name} as" in module.code:
        return module
    body = list(module.body)
    at = 0
    for i, s in enumerate(body):
        if isinstance(s, cst.SimpleStatementLine) and isinstance(s.body[0], (cst.Import, cst.ImportFrom)):
            at = i + 1
        elif at == 0 and i == 0 and isinstance(s, cst.SimpleStatementLine) and isinstance(s.body[0], cst.Expr) \
                and isinstance(s.body[0].value, cst.SimpleString):
            at = 1   # the docstring
    body.insert(at, cst.parse_statement(f"import {name}\n"))
    return module.with_changes(body=body)
